#include "backends/onnxruntime/onnx_external_data.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <optional>

namespace berth {
namespace {

// Field numbers of onnx.proto (ONNX IR version 10) that lead to a TensorProto.
namespace field {
constexpr uint32_t kModelGraph = 7;           // ModelProto.graph
constexpr uint32_t kModelTrainingInfo = 20;   // ModelProto.training_info
constexpr uint32_t kModelFunctions = 25;      // ModelProto.functions
constexpr uint32_t kTrainingInitialization = 1;  // TrainingInfoProto.initialization
constexpr uint32_t kTrainingAlgorithm = 2;       // TrainingInfoProto.algorithm
constexpr uint32_t kGraphNode = 1;            // GraphProto.node
constexpr uint32_t kGraphInitializer = 5;     // GraphProto.initializer
constexpr uint32_t kGraphSparseInitializer = 15;
constexpr uint32_t kFunctionNode = 7;         // FunctionProto.node
constexpr uint32_t kNodeAttribute = 5;        // NodeProto.attribute
constexpr uint32_t kAttributeT = 5;           // AttributeProto.t
constexpr uint32_t kAttributeG = 6;
constexpr uint32_t kAttributeTensors = 10;
constexpr uint32_t kAttributeGraphs = 11;
constexpr uint32_t kAttributeSparseTensor = 22;
constexpr uint32_t kAttributeSparseTensors = 23;
constexpr uint32_t kSparseValues = 1;         // SparseTensorProto.values
constexpr uint32_t kSparseIndices = 2;
constexpr uint32_t kTensorName = 8;           // TensorProto.name
constexpr uint32_t kTensorExternalData = 13;  // TensorProto.external_data
constexpr uint32_t kEntryKey = 1;             // StringStringEntryProto.key
constexpr uint32_t kEntryValue = 2;
}  // namespace field

// Protobuf's own default recursion limit.
constexpr int kMaxDepth = 100;

enum class Kind { kModel, kTrainingInfo, kGraph, kFunction, kNode, kAttribute, kSparse, kTensor };

// One field of a message: its number and, for a length-delimited field, its
// bytes.
struct Field {
  uint32_t number = 0;
  bool delimited = false;
  std::string_view bytes;
};

// Reads a protobuf message's fields one at a time; any malformation ends the
// walk with ok() false.
class WireReader {
 public:
  explicit WireReader(std::string_view data) : data_(data) {}

  // The next field, or nullopt at the end or on malformed input.
  std::optional<Field> Next() {
    if (pos_ == data_.size() || !ok_) return std::nullopt;
    uint64_t tag = 0;
    if (!Varint(&tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff) return Fail();
    Field f;
    f.number = static_cast<uint32_t>(tag >> 3);
    switch (tag & 7) {
      case 0: {  // varint
        uint64_t ignored = 0;
        if (!Varint(&ignored)) return Fail();
        break;
      }
      case 1:  // fixed64
        if (data_.size() - pos_ < 8) return Fail();
        pos_ += 8;
        break;
      case 2: {  // length-delimited
        uint64_t length = 0;
        if (!Varint(&length) || length > data_.size() - pos_) return Fail();
        f.delimited = true;
        f.bytes = data_.substr(pos_, static_cast<size_t>(length));
        pos_ += static_cast<size_t>(length);
        break;
      }
      case 5:  // fixed32
        if (data_.size() - pos_ < 4) return Fail();
        pos_ += 4;
        break;
      case 3:  // a group: ONNX has none, but protobuf skips them, and so do we
        if (!SkipGroup(f.number, 0)) return Fail();
        break;
      default:  // an end-group without its start; 6 and 7 do not exist
        return Fail();
    }
    return f;
  }

  bool ok() const { return ok_; }

 private:
  bool Varint(uint64_t* out) {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ == data_.size()) return false;
      const auto byte = static_cast<uint8_t>(data_[pos_++]);
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        *out = value;
        return true;
      }
    }
    return false;
  }

  // Skips the fields of group `number` up to its end-group tag; `depth`
  // bounds nested groups as protobuf bounds nesting.
  bool SkipGroup(uint64_t number, int depth) {
    if (depth > kMaxDepth) return false;
    while (true) {
      uint64_t tag = 0;
      if (!Varint(&tag) || (tag >> 3) == 0) return false;
      uint64_t ignored = 0;
      switch (tag & 7) {
        case 0:
          if (!Varint(&ignored)) return false;
          break;
        case 1:
          if (data_.size() - pos_ < 8) return false;
          pos_ += 8;
          break;
        case 2:
          if (!Varint(&ignored) || ignored > data_.size() - pos_) return false;
          pos_ += static_cast<size_t>(ignored);
          break;
        case 3:
          if (!SkipGroup(tag >> 3, depth + 1)) return false;
          break;
        case 4:
          return (tag >> 3) == number;
        case 5:
          if (data_.size() - pos_ < 4) return false;
          pos_ += 4;
          break;
        default:
          return false;
      }
    }
  }

  std::nullopt_t Fail() {
    ok_ = false;
    return std::nullopt;
  }

  std::string_view data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// The kind of message field `number` of a `parent` holds, if it can lead to
// a tensor.
std::optional<Kind> ChildKind(Kind parent, uint32_t number) {
  switch (parent) {
    case Kind::kModel:
      if (number == field::kModelGraph) return Kind::kGraph;
      if (number == field::kModelTrainingInfo) return Kind::kTrainingInfo;
      if (number == field::kModelFunctions) return Kind::kFunction;
      break;
    case Kind::kTrainingInfo:
      if (number == field::kTrainingInitialization || number == field::kTrainingAlgorithm) {
        return Kind::kGraph;
      }
      break;
    case Kind::kGraph:
      if (number == field::kGraphNode) return Kind::kNode;
      if (number == field::kGraphInitializer) return Kind::kTensor;
      if (number == field::kGraphSparseInitializer) return Kind::kSparse;
      break;
    case Kind::kFunction:
      if (number == field::kFunctionNode) return Kind::kNode;
      break;
    case Kind::kNode:
      if (number == field::kNodeAttribute) return Kind::kAttribute;
      break;
    case Kind::kAttribute:
      if (number == field::kAttributeT || number == field::kAttributeTensors) return Kind::kTensor;
      if (number == field::kAttributeG || number == field::kAttributeGraphs) return Kind::kGraph;
      if (number == field::kAttributeSparseTensor || number == field::kAttributeSparseTensors) {
        return Kind::kSparse;
      }
      break;
    case Kind::kSparse:
      if (number == field::kSparseValues || number == field::kSparseIndices) return Kind::kTensor;
      break;
    case Kind::kTensor:
      break;
  }
  return std::nullopt;
}

Status Malformed() {
  return Status::InvalidArgument("the model file is not a well-formed ONNX protobuf message");
}

// The `location` of one TensorProto, if it names one.
Status ReadTensor(std::string_view bytes, std::vector<ExternalDataRef>* out) {
  WireReader r(bytes);
  std::string name;
  std::optional<std::string> location;
  while (auto f = r.Next()) {
    if (!f->delimited) continue;
    if (f->number == field::kTensorName) name = std::string(f->bytes);
    if (f->number != field::kTensorExternalData) continue;
    WireReader entry(f->bytes);
    std::string_view key;
    std::string_view value;
    while (auto e = entry.Next()) {
      if (e->delimited && e->number == field::kEntryKey) key = e->bytes;
      if (e->delimited && e->number == field::kEntryValue) value = e->bytes;
    }
    if (!entry.ok()) return Malformed();
    if (key == "location") location = std::string(value);
  }
  if (!r.ok()) return Malformed();
  if (location) out->push_back({std::move(name), std::move(*location)});
  return Status::Ok();
}

Status Walk(std::string_view bytes, Kind kind, int depth, std::vector<ExternalDataRef>* out) {
  if (depth > kMaxDepth) {
    return Status::InvalidArgument("the model file nests messages more than " +
                                   std::to_string(kMaxDepth) + " deep");
  }
  if (kind == Kind::kTensor) return ReadTensor(bytes, out);
  WireReader r(bytes);
  while (auto f = r.Next()) {
    if (!f->delimited) continue;
    if (std::optional<Kind> child = ChildKind(kind, f->number)) {
      RETURN_IF_ERROR(Walk(f->bytes, *child, depth + 1, out));
    }
  }
  return r.ok() ? Status::Ok() : Malformed();
}

// The file's bytes, mapped read-only for the life of the object: a model of
// gigabytes is scanned without being copied.
class MappedFile {
 public:
  ~MappedFile() {
    if (data_ != nullptr) munmap(data_, size_);
  }

  Status Open(const std::filesystem::path& file) {
    const int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::InvalidArgument("cannot open " + file.string());
    struct stat st {};
    Status s;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      s = Status::InvalidArgument(file.string() + " is not a regular file");
    } else if (st.st_size > 0) {
      size_ = static_cast<size_t>(st.st_size);
      void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        s = Status::InvalidArgument("cannot read " + file.string());
      } else {
        data_ = p;
      }
    }
    close(fd);
    return s;
  }

  std::string_view bytes() const {
    return data_ == nullptr ? std::string_view() : std::string_view(static_cast<char*>(data_), size_);
  }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

// Whether `path` is `dir` or below it; both are canonical.
bool Within(const std::filesystem::path& path, const std::filesystem::path& dir) {
  auto p = path.begin();
  for (auto d = dir.begin(); d != dir.end(); ++d, ++p) {
    if (p == path.end() || *p != *d) return false;
  }
  return true;
}

Status CheckLocation(const ExternalDataRef& ref, const std::filesystem::path& dir) {
  const std::string what = "tensor '" + ref.tensor + "' takes its data from '" + ref.location + "'";
  auto refuse = [&](const std::string& why) {
    return Status::InvalidArgument(what + ", " + why +
                                   "; external data must stay in the model's version directory");
  };
  if (ref.location.empty()) return refuse("an empty path");
  if (ref.location.find('\0') != std::string::npos) return refuse("a path with a NUL byte");
  const std::filesystem::path location(ref.location);
  if (location.is_absolute()) return refuse("an absolute path");
  for (const auto& part : location) {
    if (part == "..") return refuse("a path that climbs out with '..'");
  }
  std::error_code ec;
  const std::filesystem::path resolved = std::filesystem::weakly_canonical(dir / location, ec);
  if (ec) return refuse("a path that cannot be resolved (" + ec.message() + ")");
  if (!Within(resolved, dir)) return refuse("a path that leads (through a symlink) outside");
  return Status::Ok();
}

}  // namespace

StatusOr<std::vector<ExternalDataRef>> ExternalDataLocations(std::string_view model) {
  std::vector<ExternalDataRef> refs;
  RETURN_IF_ERROR(Walk(model, Kind::kModel, 0, &refs));
  return refs;
}

Status CheckExternalData(const std::filesystem::path& model_file) {
  // A file that cannot be read, or is not a protobuf message, cannot name
  // external data either: ONNX Runtime refuses it with its own reason.
  MappedFile file;
  if (!file.Open(model_file).ok()) return Status::Ok();
  StatusOr<std::vector<ExternalDataRef>> found = ExternalDataLocations(file.bytes());
  if (!found.ok()) return Status::Ok();
  const std::vector<ExternalDataRef>& refs = *found;
  if (refs.empty()) return Status::Ok();
  std::error_code ec;
  const std::filesystem::path dir =
      std::filesystem::canonical(std::filesystem::absolute(model_file, ec).parent_path(), ec);
  if (ec) return Status::InvalidArgument("cannot resolve the directory of " + model_file.string());
  for (const ExternalDataRef& ref : refs) {
    RETURN_IF_ERROR(CheckLocation(ref, dir).WithContext(model_file.filename().string()));
  }
  return Status::Ok();
}

}  // namespace berth
