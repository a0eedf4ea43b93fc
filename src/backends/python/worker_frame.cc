#include "backends/python/worker_frame.h"

#include <cstring>
#include <limits>
#include <utility>

namespace berth::python {
namespace {

constexpr size_t kMaxRank = 64;

class Writer {
 public:
  explicit Writer(FrameKind kind) {
    out_.resize(4);
    U8(static_cast<uint8_t>(kind));
  }

  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U32(uint32_t v) { Raw(&v, sizeof(v)); }
  void U64(uint64_t v) { Raw(&v, sizeof(v)); }
  void I64(int64_t v) { Raw(&v, sizeof(v)); }
  void Raw(const void* p, size_t n) {
    if (n > 0) out_.append(static_cast<const char*>(p), n);
  }
  void String(std::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    Raw(s.data(), s.size());
  }
  void Spec(const std::string& name, DataType type, std::span<const int64_t> shape) {
    String(name);
    U8(static_cast<uint8_t>(type));
    U32(static_cast<uint32_t>(shape.size()));
    for (int64_t d : shape) I64(d);
  }

  // The frame with its length prefix filled in.
  StatusOr<std::string> Finish() && {
    const size_t body = out_.size() - 4;
    if (body > kMaxFrameBytes) {
      return Status::ResourceExhausted("a Python worker frame of " + std::to_string(body) +
                                       " bytes is over the limit of " +
                                       std::to_string(kMaxFrameBytes));
    }
    const uint32_t length = static_cast<uint32_t>(body);
    std::memcpy(out_.data(), &length, sizeof(length));
    return std::move(out_);
  }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view body) : rest_(body) {}

  bool done() const { return rest_.empty(); }

  Status Bytes(size_t n, std::string_view* out, const char* what) {
    if (n > rest_.size()) {
      return Status::InvalidArgument(std::string("the frame ends inside ") + what);
    }
    *out = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return Status::Ok();
  }
  template <typename T>
  Status Fixed(T* out, const char* what) {
    std::string_view b;
    RETURN_IF_ERROR(Bytes(sizeof(T), &b, what));
    std::memcpy(out, b.data(), sizeof(T));
    return Status::Ok();
  }
  Status Count(uint32_t* out, const char* what) {
    RETURN_IF_ERROR(Fixed(out, what));
    if (*out > kMaxCount) {
      return Status::InvalidArgument(std::string(what) + " count " + std::to_string(*out) +
                                     " is over " + std::to_string(kMaxCount));
    }
    return Status::Ok();
  }
  Status String(std::string* out, const char* what) {
    uint32_t n = 0;
    RETURN_IF_ERROR(Fixed(&n, what));
    std::string_view b;
    RETURN_IF_ERROR(Bytes(n, &b, what));
    out->assign(b);
    return Status::Ok();
  }
  Status Spec(TensorSpec* spec) {
    RETURN_IF_ERROR(String(&spec->name, "a tensor name"));
    uint8_t type = 0;
    RETURN_IF_ERROR(Fixed(&type, "a datatype"));
    if (type == 0 || type > static_cast<uint8_t>(DataType::kBytes)) {
      return Status::InvalidArgument("tensor '" + spec->name + "' has unknown datatype code " +
                                     std::to_string(type));
    }
    spec->datatype = static_cast<DataType>(type);
    uint32_t rank = 0;
    RETURN_IF_ERROR(Fixed(&rank, "a rank"));
    if (rank > kMaxRank) {
      return Status::InvalidArgument("tensor '" + spec->name + "' has rank " +
                                     std::to_string(rank) + ", over " + std::to_string(kMaxRank));
    }
    spec->shape.resize(rank);
    for (auto& d : spec->shape) {
      RETURN_IF_ERROR(Fixed(&d, "a shape"));
      if (d < -1) return Status::InvalidArgument("tensor '" + spec->name + "' has a dimension below -1");
    }
    return Status::Ok();
  }

 private:
  std::string_view rest_;
};

Status ReadSpecs(Reader* r, std::vector<TensorSpec>* out, const char* what) {
  uint32_t n = 0;
  RETURN_IF_ERROR(r->Count(&n, what));
  out->resize(n);
  for (auto& s : *out) RETURN_IF_ERROR(r->Spec(&s));
  return Status::Ok();
}

// Reads one tensor's data (`data`, all of it) into `t`, whose shape is known.
Status FillTensor(std::string_view data, Tensor* t) {
  const int64_t count = t->element_count();
  if (count < 0) {
    return Status::InvalidArgument("tensor '" + t->name() + "' has shape " +
                                   ShapeToString(t->shape()) + ", not a fully known shape");
  }
  if (t->datatype() == DataType::kBytes) {
    // Each element takes at least its 4-byte length: checked before allocating.
    if (static_cast<uint64_t>(count) > data.size() / 4) {
      return Status::InvalidArgument("tensor '" + t->name() + "' holds fewer BYTES elements than " +
                                     "its shape " + ShapeToString(t->shape()));
    }
    Reader r(data);
    t->strings().resize(static_cast<size_t>(count));
    for (auto& s : t->strings()) RETURN_IF_ERROR(r.String(&s, "a BYTES element"));
    if (!r.done()) {
      return Status::InvalidArgument("tensor '" + t->name() + "' has bytes past its last element");
    }
    return Status::Ok();
  }
  const size_t element = DataTypeByteSize(t->datatype());
  if (static_cast<uint64_t>(count) > std::numeric_limits<uint64_t>::max() / element ||
      static_cast<uint64_t>(count) * element != data.size()) {
    return Status::InvalidArgument("tensor '" + t->name() + "' has " + std::to_string(data.size()) +
                                   " bytes of data but shape " + ShapeToString(t->shape()) + " of " +
                                   std::string(DataTypeName(t->datatype())) + " needs " +
                                   std::to_string(static_cast<uint64_t>(count) * element));
  }
  t->bytes().resize(data.size());
  if (!data.empty()) std::memcpy(t->bytes().data(), data.data(), data.size());
  return Status::Ok();
}

Status ReadTensors(Reader* r, std::vector<Tensor>* out) {
  uint32_t n = 0;
  RETURN_IF_ERROR(r->Count(&n, "tensor"));
  out->clear();
  out->reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    TensorSpec spec;
    RETURN_IF_ERROR(r->Spec(&spec));
    uint64_t length = 0;
    RETURN_IF_ERROR(r->Fixed(&length, "a data length"));
    std::string_view data;
    RETURN_IF_ERROR(r->Bytes(length, &data, "a tensor's data"));
    Tensor t(std::move(spec.name), spec.datatype, std::move(spec.shape));
    RETURN_IF_ERROR(FillTensor(data, &t));
    out->push_back(std::move(t));
  }
  return Status::Ok();
}

void WriteTensors(Writer* w, std::span<const Tensor> tensors) {
  w->U32(static_cast<uint32_t>(tensors.size()));
  for (const Tensor& t : tensors) {
    w->Spec(t.name(), t.datatype(), t.shape());
    if (t.datatype() == DataType::kBytes) {
      uint64_t length = 0;
      for (const auto& s : t.strings()) length += 4 + s.size();
      w->U64(length);
      for (const auto& s : t.strings()) w->String(s);
    } else {
      w->U64(t.bytes().size());
      w->Raw(t.bytes().data(), t.bytes().size());
    }
  }
}

Status CheckCount(size_t n, const char* what) {
  if (n > kMaxCount) {
    return Status::InvalidArgument(std::string("too many ") + what + " for a Python worker (" +
                                   std::to_string(n) + ", at most " + std::to_string(kMaxCount) +
                                   ")");
  }
  return Status::Ok();
}

Status ExpectKind(Reader* r, FrameKind kind) {
  uint8_t k = 0;
  RETURN_IF_ERROR(r->Fixed(&k, "the frame kind"));
  if (k != static_cast<uint8_t>(kind)) {
    return Status::InvalidArgument("expected frame kind " + std::to_string(static_cast<int>(kind)) +
                                   ", got " + std::to_string(k));
  }
  return Status::Ok();
}

Status ExpectEnd(const Reader& r) {
  if (!r.done()) return Status::InvalidArgument("the frame has bytes past its end");
  return Status::Ok();
}

}  // namespace

StatusOr<std::string> EncodeInfer(std::span<const Tensor> inputs,
                                  std::span<const std::string> output_names) {
  RETURN_IF_ERROR(CheckCount(inputs.size(), "inputs"));
  RETURN_IF_ERROR(CheckCount(output_names.size(), "outputs"));
  Writer w(FrameKind::kInfer);
  w.U32(static_cast<uint32_t>(output_names.size()));
  for (const auto& n : output_names) w.String(n);
  WriteTensors(&w, inputs);
  return std::move(w).Finish();
}

StatusOr<std::string> EncodeResult(std::span<const Tensor> outputs) {
  RETURN_IF_ERROR(CheckCount(outputs.size(), "outputs"));
  Writer w(FrameKind::kResult);
  WriteTensors(&w, outputs);
  return std::move(w).Finish();
}

StatusOr<std::string> EncodeReady(const ModelSignature& signature) {
  RETURN_IF_ERROR(CheckCount(signature.inputs.size(), "inputs"));
  RETURN_IF_ERROR(CheckCount(signature.outputs.size(), "outputs"));
  Writer w(FrameKind::kReady);
  for (const auto* list : {&signature.inputs, &signature.outputs}) {
    w.U32(static_cast<uint32_t>(list->size()));
    for (const TensorSpec& s : *list) w.Spec(s.name, s.datatype, s.shape);
  }
  return std::move(w).Finish();
}

std::string EncodeError(WorkerError code, std::string_view message) {
  Writer w(FrameKind::kError);
  w.U8(static_cast<uint8_t>(code));
  w.String(message.substr(0, 1 << 20));
  return std::move(w).Finish().value();
}

StatusOr<FrameKind> KindOf(std::string_view body) {
  if (body.empty()) return Status::InvalidArgument("an empty frame");
  const uint8_t k = static_cast<uint8_t>(body[0]);
  if (k < static_cast<uint8_t>(FrameKind::kReady) || k > static_cast<uint8_t>(FrameKind::kError)) {
    return Status::InvalidArgument("unknown frame kind " + std::to_string(k));
  }
  return static_cast<FrameKind>(k);
}

Status DecodeInfer(std::string_view body, std::vector<Tensor>* inputs,
                   std::vector<std::string>* output_names) {
  Reader r(body);
  RETURN_IF_ERROR(ExpectKind(&r, FrameKind::kInfer));
  uint32_t n = 0;
  RETURN_IF_ERROR(r.Count(&n, "output name"));
  output_names->resize(n);
  for (auto& name : *output_names) RETURN_IF_ERROR(r.String(&name, "an output name"));
  RETURN_IF_ERROR(ReadTensors(&r, inputs));
  return ExpectEnd(r);
}

Status DecodeResult(std::string_view body, std::vector<Tensor>* outputs) {
  Reader r(body);
  RETURN_IF_ERROR(ExpectKind(&r, FrameKind::kResult));
  RETURN_IF_ERROR(ReadTensors(&r, outputs));
  return ExpectEnd(r);
}

Status DecodeReady(std::string_view body, ModelSignature* signature) {
  Reader r(body);
  RETURN_IF_ERROR(ExpectKind(&r, FrameKind::kReady));
  RETURN_IF_ERROR(ReadSpecs(&r, &signature->inputs, "input"));
  RETURN_IF_ERROR(ReadSpecs(&r, &signature->outputs, "output"));
  return ExpectEnd(r);
}

Status DecodeError(std::string_view body) {
  Reader r(body);
  RETURN_IF_ERROR(ExpectKind(&r, FrameKind::kError));
  uint8_t code = 0;
  RETURN_IF_ERROR(r.Fixed(&code, "an error code"));
  std::string message;
  RETURN_IF_ERROR(r.String(&message, "an error message"));
  if (code == static_cast<uint8_t>(WorkerError::kInvalidArgument)) {
    return Status::InvalidArgument(std::move(message));
  }
  return Status::Internal(std::move(message));
}

}  // namespace berth::python
