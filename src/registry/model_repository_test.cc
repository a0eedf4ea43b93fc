// ModelRepository against the real ONNX Runtime backend, with the tiny models
// committed under tests/data (written by tests/data/make_test_models.py):
//   add_fp32.onnx            sum = a + b, FP32 [-1, 3]
//   identity_all_types.onnx  y_<DT> = Identity(x_<DT>), [-1, -1], every v2 datatype
#include "registry/model_repository.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "backends/onnxruntime/onnxruntime_backend.h"
#include "core/float16.h"
#include "core/inference_service.h"
#include "core/model_name.h"
#include "core/scheduler.h"
#include "core/tensor_testing.h"

// LeakSanitizer (make asan): ONNX Runtime keeps 14 bytes from creating its
// Ort::Env for the life of the process. Not ours to free; everything else in
// this binary is still checked.
extern "C" const char* __lsan_default_suppressions() { return "leak:libonnxruntime.so\n"; }

namespace berth {
namespace {

using ::berth::testing::TensorValues;
using ::berth::testing::MakeTensor;

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

const fs::path kData = BERTH_TEST_DATA_DIR;

constexpr DataType kAllTypes[] = {
    DataType::kBool,  DataType::kUint8, DataType::kUint16, DataType::kUint32, DataType::kUint64,
    DataType::kInt8,  DataType::kInt16, DataType::kInt32,  DataType::kInt64,  DataType::kFp16,
    DataType::kFp32,  DataType::kFp64,  DataType::kBytes,
};

Tensor Fp32(const std::string& name, std::vector<int64_t> shape, std::vector<float> values) {
  return MakeTensor<float>(name, DataType::kFp32, std::move(shape), values);
}

// Four elements ([2, 2]) of `type` that use the edges of its range.
Tensor EdgeValues(const std::string& name, DataType type) {
  const std::vector<int64_t> shape = {2, 2};
  switch (type) {
    case DataType::kBool: return MakeTensor<uint8_t>(name, type, shape, {1, 0, 0, 1});
    case DataType::kUint8: return MakeTensor<uint8_t>(name, type, shape, {0, 1, 128, 255});
    case DataType::kUint16: return MakeTensor<uint16_t>(name, type, shape, {0, 1, 300, 65535});
    case DataType::kUint32:
      return MakeTensor<uint32_t>(name, type, shape, {0, 1, 70000, 4294967295u});
    case DataType::kUint64:
      return MakeTensor<uint64_t>(name, type, shape,
                            {0, 1, uint64_t{1} << 40, std::numeric_limits<uint64_t>::max()});
    case DataType::kInt8: return MakeTensor<int8_t>(name, type, shape, {-128, -1, 0, 127});
    case DataType::kInt16: return MakeTensor<int16_t>(name, type, shape, {-32768, -1, 0, 32767});
    case DataType::kInt32:
      return MakeTensor<int32_t>(name, type, shape, {std::numeric_limits<int32_t>::min(), -1, 0,
                                               std::numeric_limits<int32_t>::max()});
    case DataType::kInt64:
      return MakeTensor<int64_t>(name, type, shape, {std::numeric_limits<int64_t>::min(), -1, 0,
                                               std::numeric_limits<int64_t>::max()});
    case DataType::kFp16:
      return MakeTensor<uint16_t>(name, type, shape,
                            {FloatToHalf(0.5f), FloatToHalf(-65504.0f), 0x0001, 0x8000});
    case DataType::kFp32:
      return Fp32(name, shape, {0.1f, -3.4028235e38f, 1e-45f, -0.0f});
    case DataType::kFp64:
      return MakeTensor<double>(name, type, shape, {0.1, -1.7976931348623157e308, 5e-324, -0.0});
    case DataType::kBytes: {
      Tensor t(name, type, shape);
      t.strings() = {"", "abc", std::string("nul\0byte", 8), "caf\xc3\xa9"};
      return t;
    }
    case DataType::kInvalid: break;
  }
  return Tensor();
}

std::string X(DataType t) { return "x_" + std::string(DataTypeName(t)); }
std::string Y(DataType t) { return "y_" + std::string(DataTypeName(t)); }

class ModelRepositoryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { factory_ = CreateOnnxRuntimeFactory().release(); }
  static void TearDownTestSuite() {
    delete factory_;
    factory_ = nullptr;
  }

  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "berth_repo_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    repo_ = std::make_unique<ModelRepository>(
        root_, std::map<std::string, BackendFactory*>{{"onnx", factory_}}, &manager_);
  }
  void TearDown() override { fs::remove_all(root_); }

  void WriteConfig(const std::string& model, const std::string& text,
                   const std::string& file = "config.yaml") {
    fs::create_directories(root_ / model);
    std::ofstream(root_ / model / file) << text;
  }

  // Places `source` (a file under tests/data) as <model>/<version>/model.onnx.
  void AddVersion(const std::string& model, int64_t version, const std::string& source) {
    const fs::path dir = root_ / model / std::to_string(version);
    fs::create_directories(dir);
    fs::copy_file(kData / source, dir / "model.onnx", fs::copy_options::overwrite_existing);
  }

  void AddModel(const std::string& model, const std::string& source,
                const std::string& config = "{}") {
    WriteConfig(model, config);
    AddVersion(model, 1, source);
  }

  ModelEntry Entry(const std::string& model) {
    auto e = manager_.Find(model);
    EXPECT_TRUE(e.has_value()) << model << " was not published";
    return e.value_or(ModelEntry{});
  }

  StatusOr<InferenceResponse> Infer(InferenceRequest request) {
    InferenceService service(&manager_, nullptr);
    std::promise<StatusOr<InferenceResponse>> promise;
    auto future = promise.get_future();
    service.Infer(std::make_unique<InferenceRequest>(std::move(request)),
                  [&promise](StatusOr<InferenceResponse> r) { promise.set_value(std::move(r)); });
    return future.get();
  }

  static InferenceRequest AddRequest(std::vector<int64_t> shape_a, std::vector<int64_t> shape_b) {
    InferenceRequest r;
    r.model_name = "add";
    const auto n_a = static_cast<size_t>(ElementCount(shape_a));
    const auto n_b = static_cast<size_t>(ElementCount(shape_b));
    std::vector<float> a(n_a), b(n_b);
    for (size_t i = 0; i < n_a; ++i) a[i] = static_cast<float>(i + 1);
    for (size_t i = 0; i < n_b; ++i) b[i] = 10.0f * static_cast<float>(i + 1);
    r.inputs.push_back(Fp32("a", std::move(shape_a), a));
    r.inputs.push_back(Fp32("b", std::move(shape_b), b));
    return r;
  }

  static InferenceRequest IdentityRequest() {
    InferenceRequest r;
    r.model_name = "identity";
    for (DataType t : kAllTypes) r.inputs.push_back(EdgeValues(X(t), t));
    return r;
  }

  static BackendFactory* factory_;
  fs::path root_;
  ModelManager manager_;
  std::unique_ptr<ModelRepository> repo_;
};

BackendFactory* ModelRepositoryTest::factory_ = nullptr;

TEST_F(ModelRepositoryTest, LoadsAndRunsAModel) {
  AddModel("add", "add_fp32.onnx");
  ASSERT_TRUE(repo_->LoadAll().ok());
  ModelEntry e = Entry("add");
  EXPECT_EQ(e.reason, "");
  ASSERT_EQ(e.versions.size(), 1u);
  EXPECT_EQ(e.versions[0].state, ModelState::kReady);
  const Model& m = *e.versions[0].model;
  EXPECT_EQ(m.name, "add");
  EXPECT_EQ(m.version, 1);
  EXPECT_EQ(m.platform, "onnxruntime_onnx");
  EXPECT_EQ(m.signature.inputs, (std::vector<TensorSpec>{{"a", DataType::kFp32, {-1, 3}},
                                                         {"b", DataType::kFp32, {-1, 3}}}));
  EXPECT_EQ(m.signature.outputs,
            (std::vector<TensorSpec>{{"sum", DataType::kFp32, {-1, 3}}}));

  InferenceRequest req = AddRequest({2, 3}, {2, 3});
  req.id = "r-1";
  auto r = Infer(std::move(req));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->model_name, "add");
  EXPECT_EQ(r->model_version, "1");
  EXPECT_EQ(r->id, "r-1");
  ASSERT_EQ(r->outputs.size(), 1u);
  EXPECT_EQ(r->outputs[0].name(), "sum");
  EXPECT_EQ(r->outputs[0].datatype(), DataType::kFp32);
  EXPECT_EQ(r->outputs[0].shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(TensorValues<float>(r->outputs[0]), (std::vector<float>{11, 22, 33, 44, 55, 66}));
}

TEST_F(ModelRepositoryTest, CorruptFileIsUnavailableOthersReady) {
  AddModel("add", "add_fp32.onnx");
  WriteConfig("corrupt", "{}");
  fs::create_directories(root_ / "corrupt" / "1");
  std::ofstream(root_ / "corrupt" / "1" / "model.onnx") << "this is not a protobuf";
  AddModel("identity", "identity_all_types.onnx");
  ASSERT_TRUE(repo_->LoadAll().ok());

  ModelEntry bad = Entry("corrupt");
  ASSERT_EQ(bad.versions.size(), 1u);
  EXPECT_EQ(bad.versions[0].state, ModelState::kUnavailable);
  EXPECT_EQ(bad.versions[0].model, nullptr);
  EXPECT_THAT(bad.versions[0].reason,
              StartsWith("ONNX Runtime could not load corrupt/1/model.onnx: "));
  // Clients see paths relative to the repository, never where it sits.
  EXPECT_THAT(bad.versions[0].reason, Not(HasSubstr(root_.string())));
  auto got = manager_.Resolve("corrupt", "1");
  EXPECT_EQ(got.status().code(), Status::Code::kUnavailable);
  EXPECT_THAT(got.status().message(),
              StartsWith("version 1 of model 'corrupt' is UNAVAILABLE: ONNX Runtime could not"));

  EXPECT_EQ(Entry("add").versions.at(0).state, ModelState::kReady);
  EXPECT_EQ(Entry("identity").versions.at(0).state, ModelState::kReady);
  EXPECT_EQ(manager_.List().size(), 3u);
}

TEST_F(ModelRepositoryTest, BadConfigIsAModelLevelReason) {
  AddModel("add", "add_fp32.onnx", "name: add\nbogus: 1\n");
  AddModel("good", "add_fp32.onnx");
  ASSERT_TRUE(repo_->LoadAll().ok());
  ModelEntry e = Entry("add");
  EXPECT_TRUE(e.versions.empty());
  EXPECT_THAT(e.reason, StartsWith("add/config.yaml: unknown field 'bogus' in model config"));
  auto got = manager_.Resolve("add", "");
  EXPECT_EQ(got.status().code(), Status::Code::kUnavailable);
  EXPECT_THAT(got.status().message(), StartsWith("model 'add' has no ready version: "));
  EXPECT_THAT(got.status().message(), HasSubstr("unknown field 'bogus'"));
  EXPECT_EQ(Entry("good").versions.at(0).state, ModelState::kReady);
}

TEST_F(ModelRepositoryTest, MissingConfigAndUnknownBackend) {
  fs::create_directories(root_ / "noconfig" / "1");
  AddModel("trt", "add_fp32.onnx", "backend: tensorrt\n");
  ASSERT_TRUE(repo_->LoadAll().ok());
  EXPECT_EQ(Entry("noconfig").reason,
            "no config.yaml, config.json or config.pbtxt in noconfig/");
  EXPECT_EQ(Entry("trt").reason, "unknown backend 'tensorrt'");
}

TEST_F(ModelRepositoryTest, LatestOneOfThreeVersions) {
  WriteConfig("add", "version_policy: {latest: 1}\n");
  for (int v : {1, 2, 3}) AddVersion("add", v, "add_fp32.onnx");
  ASSERT_TRUE(repo_->LoadModel("add").ok());
  ModelEntry e = Entry("add");
  ASSERT_EQ(e.versions.size(), 1u);
  EXPECT_EQ(e.versions[0].version, 3);
  EXPECT_EQ(e.versions[0].state, ModelState::kReady);
  EXPECT_EQ(manager_.Resolve("add", "1").status().code(), Status::Code::kNotFound);
  auto r = Infer(AddRequest({1, 3}, {1, 3}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->model_version, "3");
}

TEST_F(ModelRepositoryTest, AllAndSpecificPolicies) {
  WriteConfig("every", "version_policy: {all: true}\n");
  for (int v : {1, 2, 10}) AddVersion("every", v, "add_fp32.onnx");
  WriteConfig("some", "version_policy: {specific: [1, 5]}\n");
  for (int v : {1, 2}) AddVersion("some", v, "add_fp32.onnx");
  ASSERT_TRUE(repo_->LoadAll().ok());

  ModelEntry every = Entry("every");
  ASSERT_EQ(every.versions.size(), 3u);
  EXPECT_EQ(every.versions[0].version, 1);
  EXPECT_EQ(every.versions[1].version, 2);
  EXPECT_EQ(every.versions[2].version, 10);  // numeric order, not "10" < "2"

  ModelEntry some = Entry("some");
  ASSERT_EQ(some.versions.size(), 2u);
  EXPECT_EQ(some.versions[0].version, 1);
  EXPECT_EQ(some.versions[0].state, ModelState::kReady);
  EXPECT_EQ(some.versions[1].version, 5);
  EXPECT_EQ(some.versions[1].state, ModelState::kUnavailable);
  EXPECT_EQ(some.versions[1].reason,
            "version directory 5 named by version_policy does not exist");
}

TEST_F(ModelRepositoryTest, OnlyPositiveIntegerDirectoriesAreVersions) {
  WriteConfig("add", "version_policy: {all: true}\n");
  AddVersion("add", 2, "add_fp32.onnx");
  for (const char* other : {"0", "01", "abc", "-1", "3x"}) {
    fs::create_directories(root_ / "add" / other);
    fs::copy_file(kData / "add_fp32.onnx", root_ / "add" / other / "model.onnx");
  }
  std::ofstream(root_ / "add" / "7") << "a file, not a directory";
  ASSERT_TRUE(repo_->LoadModel("add").ok());
  ModelEntry e = Entry("add");
  ASSERT_EQ(e.versions.size(), 1u);
  EXPECT_EQ(e.versions[0].version, 2);
}

TEST_F(ModelRepositoryTest, NoVersionsOrMissingFile) {
  WriteConfig("empty", "{}");
  WriteConfig("nofile", "{}");
  fs::create_directories(root_ / "nofile" / "1");
  ASSERT_TRUE(repo_->LoadAll().ok());
  EXPECT_EQ(Entry("empty").reason, "no version directories (e.g. empty/1/)");
  ModelEntry nofile = Entry("nofile");
  ASSERT_EQ(nofile.versions.size(), 1u);
  EXPECT_EQ(nofile.versions[0].state, ModelState::kUnavailable);
  EXPECT_EQ(nofile.versions[0].reason,
            "missing nofile/1/model.onnx");
}

TEST_F(ModelRepositoryTest, ConfigContradictingTheGraphIsUnavailable) {
  AddModel("add", "add_fp32.onnx",
           "inputs:\n"
           "  - {name: a, datatype: INT64, shape: [-1, 3]}\n"
           "  - {name: b, datatype: FP32, shape: [-1, 3]}\n");
  AddModel("wide", "add_fp32.onnx",
           "inputs:\n"
           "  - {name: a, datatype: FP32, shape: [-1, 4]}\n"
           "  - {name: b, datatype: FP32, shape: [-1, 3]}\n");
  AddModel("fixed", "add_fp32.onnx", "max_batch_size: 4\n"
           "inputs:\n"
           "  - {name: a, datatype: FP32, shape: [2, 3]}\n"
           "  - {name: b, datatype: FP32, shape: [2, 3]}\n");
  ASSERT_TRUE(repo_->LoadAll().ok());
  auto reason = [this](const std::string& model) {
    ModelEntry e = Entry(model);
    EXPECT_EQ(e.versions.size(), 1u);
    if (e.versions.empty()) return std::string();
    EXPECT_EQ(e.versions[0].state, ModelState::kUnavailable);
    return e.versions[0].reason;
  };
  EXPECT_EQ(reason("add"), "config declares input 'a' as INT64 but the model has FP32");
  EXPECT_EQ(reason("wide"),
            "config declares input 'a' with shape [-1, 4] but the model has [-1, 3]");
  EXPECT_EQ(reason("fixed"),
            "max_batch_size > 0 needs a variable first (batch) dimension, but input 'a' has "
            "shape [2, 3]");
}

TEST_F(ModelRepositoryTest, NarrowedConfigIsWhatClientsSee) {
  AddModel("add", "add_fp32.onnx",
           "inputs:\n"
           "  - {name: a, datatype: FP32, shape: [2, 3]}\n"
           "  - {name: b, datatype: FP32, shape: [2, 3]}\n");
  ASSERT_TRUE(repo_->LoadModel("add").ok());
  ASSERT_EQ(Entry("add").versions.at(0).state, ModelState::kReady);
  EXPECT_TRUE(Infer(AddRequest({2, 3}, {2, 3})).ok());
  auto r = Infer(AddRequest({1, 3}, {1, 3}));
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "input 'a' has shape [1, 3], expected [2, 3]");
}

TEST_F(ModelRepositoryTest, MaxBatchSizeIsEnforced) {
  AddModel("add", "add_fp32.onnx", "max_batch_size: 4\n");
  ASSERT_TRUE(repo_->LoadModel("add").ok());
  EXPECT_TRUE(Infer(AddRequest({4, 3}, {4, 3})).ok());
  auto r = Infer(AddRequest({5, 3}, {5, 3}));
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "input 'a' has batch size 5, over the model's max_batch_size 4");
}

TEST_F(ModelRepositoryTest, EngineErrorsBecomeInvalidArgument) {
  AddModel("add", "add_fp32.onnx");
  ASSERT_TRUE(repo_->LoadModel("add").ok());
  // Both match [-1, 3], but [2, 3] + [3, 3] does not broadcast.
  auto r = Infer(AddRequest({2, 3}, {3, 3}));
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(r.status().message(), StartsWith("ONNX Runtime: "));
}

TEST_F(ModelRepositoryTest, LoadModelNamesAndRoot) {
  EXPECT_EQ(repo_->LoadModel("").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(repo_->LoadModel("../etc").message(), "invalid model name '../etc': it starts with '.'");
  EXPECT_EQ(repo_->LoadModel(".hidden").code(), Status::Code::kInvalidArgument);
  Status missing = repo_->LoadModel("absent");
  EXPECT_EQ(missing.code(), Status::Code::kNotFound);
  EXPECT_EQ(missing.message(), "Request for unknown model: 'absent' is not found (model 'absent' is not in the repository)");

  ModelManager other;
  ModelRepository nowhere(root_ / "does-not-exist", {{"onnx", factory_}}, &other);
  Status s = nowhere.LoadAll();
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_EQ(s.message(),
            "model repository '" + (root_ / "does-not-exist").string() + "' is not a directory");
}

TEST_F(ModelRepositoryTest, ReloadSwapsVersionsButHeldOnesKeepWorking) {
  WriteConfig("add", "{}");
  AddVersion("add", 1, "add_fp32.onnx");
  ASSERT_TRUE(repo_->LoadModel("add").ok());
  auto held = manager_.Resolve("add", "");
  ASSERT_TRUE(held.ok());
  AddVersion("add", 2, "add_fp32.onnx");
  ASSERT_TRUE(repo_->LoadModel("add").ok());
  EXPECT_EQ((*manager_.Resolve("add", ""))->version, 2);
  // The request that resolved version 1 before the swap still runs on it.
  auto r = ExecuteRequest(**held, AddRequest({1, 3}, {1, 3}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->model_version, "1");
  EXPECT_EQ(TensorValues<float>(r->outputs.at(0)), (std::vector<float>{11, 22, 33}));
}

// ---- the backend's datatype mapping, every v2 datatype through ORT ---------

TEST_F(ModelRepositoryTest, IdentitySignatureHasEveryDatatype) {
  AddModel("identity", "identity_all_types.onnx");
  ASSERT_TRUE(repo_->LoadModel("identity").ok());
  ModelEntry e = Entry("identity");
  ASSERT_EQ(e.versions.at(0).state, ModelState::kReady) << e.versions.at(0).reason;
  const ModelSignature& sig = e.versions[0].model->signature;
  ASSERT_EQ(sig.inputs.size(), std::size(kAllTypes));
  ASSERT_EQ(sig.outputs.size(), std::size(kAllTypes));
  for (size_t i = 0; i < std::size(kAllTypes); ++i) {
    EXPECT_EQ(sig.inputs[i], (TensorSpec{X(kAllTypes[i]), kAllTypes[i], {-1, -1}}));
    EXPECT_EQ(sig.outputs[i], (TensorSpec{Y(kAllTypes[i]), kAllTypes[i], {-1, -1}}));
  }
}

TEST_F(ModelRepositoryTest, IdentityRoundTripsEveryDatatype) {
  AddModel("identity", "identity_all_types.onnx");
  ASSERT_TRUE(repo_->LoadModel("identity").ok());
  InferenceRequest req = IdentityRequest();
  const std::vector<Tensor> sent = req.inputs;
  auto r = Infer(std::move(req));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->outputs.size(), std::size(kAllTypes));
  for (size_t i = 0; i < std::size(kAllTypes); ++i) {
    const Tensor& out = r->outputs[i];
    const std::string name(DataTypeName(kAllTypes[i]));
    EXPECT_EQ(out.name(), Y(kAllTypes[i]));
    EXPECT_EQ(out.datatype(), kAllTypes[i]) << name;
    EXPECT_EQ(out.shape(), (std::vector<int64_t>{2, 2})) << name;
    EXPECT_EQ(out.bytes(), sent[i].bytes()) << name;
    EXPECT_EQ(out.strings(), sent[i].strings()) << name;
    EXPECT_TRUE(out.CheckConsistent().ok()) << name;
  }
}

TEST_F(ModelRepositoryTest, RequestedOutputsOnlyInOrder) {
  AddModel("identity", "identity_all_types.onnx");
  ASSERT_TRUE(repo_->LoadModel("identity").ok());
  InferenceRequest req = IdentityRequest();
  req.outputs = {{Y(DataType::kBytes), {}}, {Y(DataType::kInt8), {}}};
  auto r = Infer(std::move(req));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->outputs.size(), 2u);
  EXPECT_EQ(r->outputs[0].name(), "y_BYTES");
  EXPECT_EQ(r->outputs[0].strings().at(1), "abc");
  EXPECT_EQ(r->outputs[1].name(), "y_INT8");
  EXPECT_EQ(TensorValues<int8_t>(r->outputs[1]), (std::vector<int8_t>{-128, -1, 0, 127}));
}

TEST_F(ModelRepositoryTest, ZeroSizeTensorsRunThrough) {
  AddModel("identity", "identity_all_types.onnx");
  ASSERT_TRUE(repo_->LoadModel("identity").ok());
  InferenceRequest req;
  req.model_name = "identity";
  for (DataType t : kAllTypes) {
    Tensor x(X(t), t, {0, 3});
    ASSERT_TRUE(x.Allocate().ok());
    req.inputs.push_back(std::move(x));
  }
  auto r = Infer(std::move(req));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (const Tensor& out : r->outputs) {
    EXPECT_EQ(out.shape(), (std::vector<int64_t>{0, 3})) << out.name();
    EXPECT_EQ(out.element_count(), 0);
    EXPECT_TRUE(out.CheckConsistent().ok()) << out.name();
  }
}

TEST_F(ModelRepositoryTest, NanRefusedUnlessTheConfigAllowsIt) {
  AddModel("identity", "identity_all_types.onnx");
  ASSERT_TRUE(repo_->LoadModel("identity").ok());
  auto with_nan = [] {
    InferenceRequest req = IdentityRequest();
    for (Tensor& t : req.inputs) {
      if (t.datatype() == DataType::kFp32) t.data<float>()[2] = std::nanf("");
      if (t.datatype() == DataType::kFp16) t.data<uint16_t>()[3] = 0xfc00;  // -Inf
      if (t.datatype() == DataType::kFp64) {
        t.data<double>()[0] = std::numeric_limits<double>::infinity();
      }
    }
    return req;
  };
  auto refused = Infer(with_nan());
  EXPECT_EQ(refused.status().code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("holds a non-finite value"));

  WriteConfig("identity", "allow_nan: true\n");
  ASSERT_TRUE(repo_->LoadModel("identity").ok());
  auto r = Infer(with_nan());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (const Tensor& out : r->outputs) {
    if (out.datatype() == DataType::kFp32) {
      EXPECT_TRUE(std::isnan(out.data<float>()[2]));
    } else if (out.datatype() == DataType::kFp16) {
      EXPECT_EQ(out.data<uint16_t>()[3], 0xfc00);
    } else if (out.datatype() == DataType::kFp64) {
      EXPECT_TRUE(std::isinf(out.data<double>()[0]));
    }
  }
}

// Issue #6: a half-written newest version must not hide a complete older one.
TEST_F(ModelRepositoryTest, BrokenNewestVersionFallsBackAndIsListed) {
  WriteConfig("add", "version_policy: {latest: 1}\n");
  AddVersion("add", 6, "add_fp32.onnx");
  fs::create_directories(root_ / "add" / "7");
  std::ofstream(root_ / "add" / "7" / "model.onnx") << "half written";
  ASSERT_TRUE(repo_->LoadModel("add").ok());
  ModelEntry e = Entry("add");
  ASSERT_EQ(e.versions.size(), 2u);
  EXPECT_EQ(e.versions[0].version, 6);
  EXPECT_EQ(e.versions[0].state, ModelState::kReady);
  EXPECT_EQ(e.versions[1].version, 7);
  EXPECT_EQ(e.versions[1].state, ModelState::kUnavailable);
  EXPECT_THAT(e.versions[1].reason, HasSubstr("add/7/model.onnx"));
  auto r = Infer(AddRequest({1, 3}, {1, 3}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->model_version, "6");
}

TEST_F(ModelRepositoryTest, LatestTwoSkipsEveryBrokenVersion) {
  WriteConfig("add", "version_policy: {latest: 2}\n");
  for (int v : {1, 2, 4}) AddVersion("add", v, "add_fp32.onnx");
  for (int v : {3, 5}) {
    fs::create_directories(root_ / "add" / std::to_string(v));
  }
  ASSERT_TRUE(repo_->LoadModel("add").ok());
  std::vector<std::pair<int64_t, ModelState>> got;
  for (const auto& v : Entry("add").versions) got.emplace_back(v.version, v.state);
  const std::vector<std::pair<int64_t, ModelState>> want = {{2, ModelState::kReady},
                                                            {3, ModelState::kUnavailable},
                                                            {4, ModelState::kReady},
                                                            {5, ModelState::kUnavailable}};
  EXPECT_EQ(got, want);
}

// Issue #6: names a request sends are checked before they reach the table or
// a path; a name that is not in the repository creates nothing.
TEST_F(ModelRepositoryTest, LoadRefusesMalformedAndUnknownNamesAndCreatesNothing) {
  AddModel("lin", "add_fp32.onnx");
  using namespace std::string_literals;
  for (const std::string& name :
       {std::string(256, 'a'), std::string(5000, 'a'), "lin\0"s, "lin\0/../x"s, "../lin"s,
        ".berth"s, "a\nb"s, ""s}) {
    Status s = repo_->LoadModel(name);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << PrintableExcerpt(name);
    EXPECT_EQ(repo_->UnloadModel(name).code(), Status::Code::kInvalidArgument);
  }
  EXPECT_EQ(repo_->LoadModel("absent").code(), Status::Code::kNotFound);
  EXPECT_TRUE(manager_.List().empty());
  ASSERT_TRUE(repo_->LoadModel("lin").ok());
  EXPECT_EQ(manager_.List().size(), 1u);
}

// Issue #6: link loops in the repository never throw out of the walker.
TEST_F(ModelRepositoryTest, SymlinkLoopsAreReportedNotThrown) {
  AddModel("good", "add_fp32.onnx");
  fs::create_directory_symlink(root_ / "self", root_ / "self");
  fs::create_directory_symlink(root_ / "pong", root_ / "ping");
  fs::create_directory_symlink(root_ / "ping", root_ / "pong");
  WriteConfig("loopfile", "{}");
  fs::create_directories(root_ / "loopfile" / "1");
  fs::create_symlink(root_ / "loopfile" / "1" / "model.onnx",
                     root_ / "loopfile" / "1" / "model.onnx");
  fs::create_directories(root_ / "loopconfig" / "1");
  fs::create_symlink(root_ / "loopconfig" / "config.yaml", root_ / "loopconfig" / "config.yaml");
  fs::create_directories(root_ / "loopdir");
  fs::create_directory_symlink(root_ / "loopdir" / "1", root_ / "loopdir" / "1");
  WriteConfig("loopdir", "{}");

  ASSERT_TRUE(repo_->LoadAll().ok());
  EXPECT_EQ(Entry("good").versions.at(0).state, ModelState::kReady);
  ModelEntry file = Entry("loopfile");
  ASSERT_EQ(file.versions.size(), 1u);
  EXPECT_EQ(file.versions[0].state, ModelState::kUnavailable);
  EXPECT_THAT(file.versions[0].reason, HasSubstr("loopfile/1/model.onnx"));
  EXPECT_THAT(Entry("loopconfig").reason, HasSubstr("loopconfig/config.yaml"));
  EXPECT_FALSE(manager_.Find("self").has_value());
  EXPECT_FALSE(manager_.Find("ping").has_value());
  for (const char* name : {"self", "ping", "loopfile", "loopconfig", "loopdir"}) {
    Status s = repo_->LoadModel(name);  // must not throw
    EXPECT_THAT(s.message(), Not(HasSubstr(root_.string()))) << name;
  }
  EXPECT_GE(repo_->Poll(), 0);
  std::ofstream(root_ / "good" / "config.yaml") << "{}   \n";
  EXPECT_GE(repo_->Poll(), 1);
  EXPECT_EQ(Entry("good").versions.at(0).state, ModelState::kReady);
}

// A reload (a promotion, a poll, a new version) loads only what changed: a
// serving version whose files are unchanged keeps its Model, warm session and
// batcher.
TEST_F(ModelRepositoryTest, ReloadKeepsUnchangedVersionsAndReloadsChangedOnes) {
  WriteConfig("add", "version_policy: {all: true}\n");
  for (int v : {1, 2}) AddVersion("add", v, "add_fp32.onnx");
  ASSERT_TRUE(repo_->LoadModel("add").ok());
  const ModelHandle v1 = Entry("add").versions.at(0).model;
  const ModelHandle v2 = Entry("add").versions.at(1).model;
  AddVersion("add", 3, "add_fp32.onnx");
  ASSERT_TRUE(repo_->LoadModel("add").ok());
  ModelEntry e = Entry("add");
  ASSERT_EQ(e.versions.size(), 3u);
  EXPECT_EQ(e.versions[0].model, v1);
  EXPECT_EQ(e.versions[1].model, v2);

  fs::remove(root_ / "add" / "2" / "model.onnx");
  fs::copy_file(kData / "add_fp32.onnx", root_ / "add" / "2" / "model.onnx");
  std::ofstream(root_ / "add" / "2" / "notes.txt") << "changed";
  ASSERT_TRUE(repo_->LoadModel("add").ok());
  e = Entry("add");
  EXPECT_EQ(e.versions[0].model, v1);
  EXPECT_NE(e.versions[1].model, v2);

  std::ofstream(root_ / "add" / "config.yaml") << "version_policy: {all: true}\nallow_nan: true\n";
  ASSERT_TRUE(repo_->LoadModel("add").ok());
  EXPECT_NE(Entry("add").versions[0].model, v1);  // a new config reloads every version
  EXPECT_TRUE(Entry("add").versions[0].model->config.allow_nan);
}

// ---- warm-up (core/warmup.h) and --memory-budget (core/memory_budget.h) ----

constexpr const char* kWrongWarmup =
    "version_policy: {all: true}\n"
    "warmup:\n"
    "  inputs:\n"
    "    - {name: a, datatype: FP32, shape: [1, 4]}\n"
    "    - {name: b, datatype: FP32, shape: [1, 4]}\n";

TEST_F(ModelRepositoryTest, AConfigWarmupRunsBeforeTheVersionIsPublished) {
  AddModel("add", "add_fp32.onnx",
           "warmup:\n  count: 2\n  inputs:\n"
           "    - {name: a, datatype: FP32, shape: [2, 3], data: [1, 2, 3, 4, 5, 6]}\n"
           "    - {name: b, datatype: FP32, shape: [2, 3]}\n");
  ASSERT_TRUE(repo_->LoadAll().ok());
  ModelEntry e = Entry("add");
  ASSERT_EQ(e.versions.size(), 1u);
  EXPECT_EQ(e.versions[0].state, ModelState::kReady) << e.versions[0].reason;
  EXPECT_EQ(e.versions[0].failure, LoadFailure::kNone);
}

TEST_F(ModelRepositoryTest, AVersionThatFailsItsWarmupIsUnavailableWithTheReason) {
  AddModel("add", "add_fp32.onnx", kWrongWarmup);
  ASSERT_TRUE(repo_->LoadAll().ok());
  ModelEntry e = Entry("add");
  ASSERT_EQ(e.versions.size(), 1u);
  EXPECT_EQ(e.versions[0].state, ModelState::kUnavailable);
  EXPECT_EQ(e.versions[0].failure, LoadFailure::kWarmup);
  EXPECT_THAT(e.versions[0].reason, StartsWith("failed its warm-up request: "));
  EXPECT_THAT(e.versions[0].reason, HasSubstr("'a'"));
  EXPECT_EQ(e.versions[0].model, nullptr);
}

// The generated request (zeros) runs through every datatype's input.
TEST_F(ModelRepositoryTest, TheGeneratedWarmupCoversEveryDatatype) {
  AddModel("identity", "identity_all_types.onnx");
  ASSERT_TRUE(repo_->LoadAll().ok());
  EXPECT_EQ(Entry("identity").versions.at(0).state, ModelState::kReady);
}

class RegistryRepositoryTest : public ModelRepositoryTest {
 protected:
  void SetUp() override {
    ModelRepositoryTest::SetUp();
    auto store = OpenSqliteRegistryStore((root_ / "registry.db").string());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    repo_ = std::make_unique<ModelRepository>(
        root_, std::map<std::string, BackendFactory*>{{"onnx", factory_}}, &manager_,
        store_.get());
  }
  void TearDown() override {
    repo_.reset();
    manager_.Remove("add");
    store_.reset();
    ModelRepositoryTest::TearDown();
  }

  std::optional<int64_t> Production() {
    auto aliases = store_->Aliases("add");
    EXPECT_TRUE(aliases.ok());
    for (const AliasRecord& a : *aliases) {
      if (a.alias == "production") return a.version;
    }
    return std::nullopt;
  }

  // Version 1 and 2 of add, with production at 1.
  void PromoteOne() {
    WriteConfig("add", "version_policy: {all: true}\n");
    AddVersion("add", 1, "add_fp32.onnx");
    AddVersion("add", 2, "add_fp32.onnx");
    ASSERT_TRUE(repo_->LoadAll().ok());
    std::optional<int64_t> previous;
    ASSERT_TRUE(repo_->Promote("add", 1, AliasChange{}, &previous).ok());
    ASSERT_EQ(Production(), 1);
  }

  std::unique_ptr<RegistryStore> store_;
};

TEST_F(RegistryRepositoryTest, APromotionToAVersionThatFailsItsWarmupIsRefused) {
  PromoteOne();
  const ModelHandle serving = Entry("add").Default()->model;
  // The new config's warm-up does not fit the model: every version loaded
  // under it fails, and none may be switched to.
  WriteConfig("add", kWrongWarmup);
  std::optional<int64_t> previous;
  Status s = repo_->Promote("add", 2, AliasChange{}, &previous);
  EXPECT_EQ(s.code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(s.message(), StartsWith("version 2 of model 'add' failed its warm-up request: "));
  EXPECT_THAT(s.message(), HasSubstr("; alias 'production' is unchanged"));
  EXPECT_EQ(Production(), 1);
  EXPECT_EQ(Entry("add").Default()->model, serving);
  InferenceRequest req = AddRequest({1, 3}, {1, 3});
  auto r = Infer(std::move(req));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->model_version, "1");

  s = repo_->SetShadow("add", 2, 10, AliasChange{}, &previous);
  EXPECT_EQ(s.code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("failed its warm-up request"));
  EXPECT_THAT(s.message(), HasSubstr("the shadow is unchanged"));
}

TEST_F(RegistryRepositoryTest, APushWhoseWarmupFailsIsNotStored) {
  PromoteOne();
  WriteConfig("add", kWrongWarmup);
  std::ifstream in(kData / "add_fp32.onnx", std::ios::binary);
  const std::string artifact((std::istreambuf_iterator<char>(in)), {});
  StatusOr<int64_t> pushed = repo_->Push("add", artifact, "", "test", false);
  ASSERT_FALSE(pushed.ok());
  EXPECT_EQ(pushed.status().code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(pushed.status().message(),
              StartsWith("version 3 of model 'add' was not stored: it failed its warm-up request"));
  EXPECT_FALSE(fs::exists(root_ / "add" / "3"));
}

TEST_F(RegistryRepositoryTest, APromotionOverTheMemoryBudgetIsRefusedAndTheAliasStays) {
  PromoteOne();
  const ModelHandle serving = Entry("add").Default()->model;
  // Version 1 was loaded without a budget; from now on nothing fits.
  MemoryBudget budget(1, 2);
  repo_->SetMemoryBudget(&budget);
  // Version 2 (loaded, unpinned) would be kept as it is: give it new files
  // so that the promotion must load it.
  std::ofstream(root_ / "add" / "2" / "notes.txt") << "changed";
  std::optional<int64_t> previous;
  Status s = repo_->Promote("add", 2, AliasChange{}, &previous);
  EXPECT_EQ(s.code(), Status::Code::kResourceExhausted);
  EXPECT_THAT(s.message(), StartsWith("version 2 of model 'add' needs "));
  EXPECT_THAT(s.message(), HasSubstr("memory budget is free"));
  EXPECT_THAT(s.message(), HasSubstr("alias 'production' is unchanged"));
  EXPECT_EQ(Production(), 1);
  EXPECT_EQ(Entry("add").Default()->model, serving);
  EXPECT_EQ(budget.reserved(), 0u);
  repo_->SetMemoryBudget(nullptr);
}

TEST_F(ModelRepositoryTest, LoadsOverTheMemoryBudgetAreRefusedNotFatal) {
  MemoryBudget budget(1, 2);
  repo_->SetMemoryBudget(&budget);
  AddModel("add", "add_fp32.onnx");
  ASSERT_TRUE(repo_->LoadAll().ok());  // published UNAVAILABLE, start-up goes on
  ModelEntry e = Entry("add");
  ASSERT_EQ(e.versions.size(), 1u);
  EXPECT_EQ(e.versions[0].state, ModelState::kUnavailable);
  EXPECT_EQ(e.versions[0].failure, LoadFailure::kMemoryBudget);
  EXPECT_THAT(e.versions[0].reason, StartsWith("version 1 of model 'add' needs "));
  Status s = repo_->LoadModel("add");
  EXPECT_EQ(s.code(), Status::Code::kResourceExhausted);
  EXPECT_THAT(s.message(), StartsWith("model 'add' has no version loaded: version 1 of model "
                                      "'add' needs "));
  EXPECT_EQ(budget.reserved(), 0u);
  manager_.Remove("add");
}

TEST_F(ModelRepositoryTest, AVersionHoldsItsReservationUntilItsLastHandleGoes) {
  MemoryBudget budget;  // no limit: accounted all the same
  repo_->SetMemoryBudget(&budget);
  AddModel("add", "add_fp32.onnx");
  ASSERT_TRUE(repo_->LoadAll().ok());
  ModelHandle held = Entry("add").versions.at(0).model;
  ASSERT_NE(held->memory, nullptr);
  const uint64_t artifact = fs::file_size(root_ / "add" / "1" / "model.onnx");
  EXPECT_GE(held->memory->bytes(), artifact);
  EXPECT_EQ(budget.reserved(), held->memory->bytes());
  ASSERT_TRUE(repo_->UnloadModel("add").ok());
  EXPECT_GT(budget.reserved(), 0u);  // a request still holds the version
  EXPECT_EQ(held.use_count(), 1);
  held.reset();
  EXPECT_EQ(budget.reserved(), 0u);
}

// The directory walker: a new version that does not fit is listed with the
// reason, and the version serving before keeps serving (availability first).
TEST_F(ModelRepositoryTest, APolledVersionOverTheBudgetLeavesTheServingOneInPlace) {
  AddModel("add", "add_fp32.onnx");
  ASSERT_TRUE(repo_->LoadAll().ok());
  const ModelHandle serving = Entry("add").versions.at(0).model;
  MemoryBudget budget(1, 2);
  repo_->SetMemoryBudget(&budget);
  AddVersion("add", 2, "add_fp32.onnx");
  EXPECT_EQ(repo_->Poll(), 1);
  ModelEntry e = Entry("add");
  ASSERT_EQ(e.versions.size(), 2u);
  EXPECT_EQ(e.versions[0].model, serving);
  EXPECT_EQ(e.versions[1].state, ModelState::kUnavailable);
  EXPECT_EQ(e.versions[1].failure, LoadFailure::kMemoryBudget);
  EXPECT_THAT(e.versions[1].reason, StartsWith("version 2 of model 'add' needs "));
  EXPECT_EQ(e.Default()->model, serving);
  manager_.Remove("add");
  repo_->SetMemoryBudget(nullptr);
}

}  // namespace
}  // namespace berth
