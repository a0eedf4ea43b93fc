#include "registry/config_parser.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace berth {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Parses `text`, expecting InvalidArgument; returns the message.
std::string ParseError(const std::string& text) {
  auto c = ParseModelConfig(text);
  if (c.ok()) return "<parsed without error>";
  EXPECT_EQ(c.status().code(), Status::Code::kInvalidArgument) << c.status().ToString();
  return c.status().message();
}

TEST(ParseModelConfigTest, EveryField) {
  auto c = ParseModelConfig(R"(
name: iris
backend: onnx
max_batch_size: 16
version_policy: {latest: 2}
onnxruntime:
  intra_op_threads: 4
  inter_op_threads: 2
  graph_optimization_level: basic
allow_nan: true
dynamic_batching:
  max_queue_delay_microseconds: 500
  preferred_batch_sizes: [4, 8]
  max_queue_size: 32
instance_count: 3
inputs:
  - {name: x, datatype: FP32, shape: [-1, 4]}
  - name: mask
    datatype: BOOL
    shape: [-1]
outputs:
  - {name: label, datatype: INT64, shape: [-1]}
  - {name: text, datatype: BYTES, shape: []}
)");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->name, "iris");
  EXPECT_EQ(c->backend, "onnx");
  EXPECT_EQ(c->max_batch_size, 16);
  EXPECT_EQ(c->version_policy.kind, VersionPolicy::Kind::kLatest);
  EXPECT_EQ(c->version_policy.latest, 2);
  EXPECT_EQ(c->onnxruntime.intra_op_threads, 4);
  EXPECT_EQ(c->onnxruntime.inter_op_threads, 2);
  EXPECT_EQ(c->onnxruntime.graph_optimization_level, "basic");
  EXPECT_TRUE(c->allow_nan);
  ASSERT_TRUE(c->dynamic_batching.has_value());
  EXPECT_EQ(c->dynamic_batching->max_queue_delay_microseconds, 500);
  EXPECT_EQ(c->dynamic_batching->preferred_batch_sizes, (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(c->dynamic_batching->max_queue_size, 32);
  EXPECT_EQ(c->instance_count, 3);
  ASSERT_EQ(c->inputs.size(), 2u);
  EXPECT_EQ(c->inputs[0], (TensorSpec{"x", DataType::kFp32, {-1, 4}}));
  EXPECT_EQ(c->inputs[1], (TensorSpec{"mask", DataType::kBool, {-1}}));
  ASSERT_EQ(c->outputs.size(), 2u);
  EXPECT_EQ(c->outputs[0], (TensorSpec{"label", DataType::kInt64, {-1}}));
  EXPECT_EQ(c->outputs[1], (TensorSpec{"text", DataType::kBytes, {}}));
}

TEST(ParseModelConfigTest, Defaults) {
  auto c = ParseModelConfig("name: m\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->backend, "onnx");
  EXPECT_EQ(c->max_batch_size, 0);
  EXPECT_EQ(c->version_policy, VersionPolicy{});
  EXPECT_EQ(c->version_policy.kind, VersionPolicy::Kind::kLatest);
  EXPECT_EQ(c->version_policy.latest, 1);
  EXPECT_EQ(c->onnxruntime, OnnxRuntimeOptions{});
  EXPECT_EQ(c->onnxruntime.graph_optimization_level, "all");
  EXPECT_FALSE(c->allow_nan);
  EXPECT_FALSE(c->dynamic_batching.has_value());
  EXPECT_EQ(c->instance_count, 1);
  EXPECT_TRUE(c->inputs.empty());
  EXPECT_TRUE(c->outputs.empty());

  auto empty_map = ParseModelConfig("{}");
  ASSERT_TRUE(empty_map.ok());
  EXPECT_EQ(empty_map->name, "");
}

TEST(ParseModelConfigTest, JsonIsAccepted) {
  auto c = ParseModelConfig(R"({
    "name": "m", "max_batch_size": 8, "allow_nan": false,
    "version_policy": {"specific": [1, 3]},
    "onnxruntime": {"intra_op_threads": 0},
    "inputs": [{"name": "x", "datatype": "FP16", "shape": [-1, 2]}]
  })");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->name, "m");
  EXPECT_EQ(c->max_batch_size, 8);
  EXPECT_EQ(c->version_policy.kind, VersionPolicy::Kind::kSpecific);
  EXPECT_EQ(c->version_policy.specific, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(c->onnxruntime.intra_op_threads, 0);
  ASSERT_EQ(c->inputs.size(), 1u);
  EXPECT_EQ(c->inputs[0], (TensorSpec{"x", DataType::kFp16, {-1, 2}}));
}

TEST(ParseModelConfigTest, EmptyOrMalformed) {
  EXPECT_EQ(ParseError(""), "the model config is empty");
  EXPECT_EQ(ParseError("# only a comment\n"), "the model config is empty");
  EXPECT_THAT(ParseError("name: [unclosed"),
              StartsWith("the model config is not valid YAML/JSON: "));
  EXPECT_THAT(ParseError("{\"name\": \"m\""),
              StartsWith("the model config is not valid YAML/JSON: "));
  EXPECT_EQ(ParseError("just a string"), "model config must be a mapping");
  EXPECT_EQ(ParseError("- a\n- b\n"), "model config must be a mapping");
}

TEST(ParseModelConfigTest, UnknownKeysAreNamed) {
  // The allowed list grows with the schema; check it names the offender and
  // lists the real fields.
  const std::string top = ParseError("name: m\nmax_batch: 4\n");
  EXPECT_THAT(top, StartsWith("unknown field 'max_batch' in model config (allowed: "));
  for (const char* field : {"allow_nan", "backend", "inputs", "max_batch_size", "name",
                            "onnxruntime", "outputs", "version_policy"}) {
    EXPECT_THAT(top, HasSubstr(field));
  }
  EXPECT_EQ(ParseError("inputs: [{name: x, datatype: FP32, dims: [1]}]"),
            "unknown field 'dims' in inputs[0] (allowed: datatype, name, shape)");
  EXPECT_EQ(ParseError("outputs:\n  - {name: y, datatype: FP32, shape: [1]}\n"
                       "  - {name: z, datatype: FP32, shape: [1], format: x}\n"),
            "unknown field 'format' in outputs[1] (allowed: datatype, name, shape)");
  EXPECT_EQ(ParseError("onnxruntime: {threads: 2}"),
            "unknown field 'threads' in onnxruntime (allowed: graph_optimization_level, "
            "inter_op_threads, intra_op_threads)");
  EXPECT_EQ(ParseError("version_policy: {newest: 2}"),
            "unknown field 'newest' in version_policy (allowed: all, latest, specific)");
  EXPECT_THAT(ParseError(R"({"name": "m", "rate_limiter": {}})"),
              StartsWith("unknown field 'rate_limiter' in model config"));
}

TEST(ParseModelConfigTest, WrongTypes) {
  EXPECT_EQ(ParseError("max_batch_size: eight"), "field 'max_batch_size' has an invalid value");
  EXPECT_EQ(ParseError("max_batch_size: 1.5"), "field 'max_batch_size' has an invalid value");
  EXPECT_EQ(ParseError("max_batch_size: [1]"), "field 'max_batch_size' has an invalid value");
  EXPECT_EQ(ParseError("allow_nan: maybe"), "field 'allow_nan' has an invalid value");
  EXPECT_EQ(ParseError("name: [a, b]"), "field 'name' has an invalid value");
  EXPECT_EQ(ParseError("backend: {x: 1}"), "field 'backend' has an invalid value");
  EXPECT_EQ(ParseError("onnxruntime: {intra_op_threads: many}"),
            "field 'onnxruntime.intra_op_threads' has an invalid value");
  EXPECT_EQ(ParseError("onnxruntime: [1]"), "onnxruntime must be a mapping");
  EXPECT_EQ(ParseError("inputs: {name: x}"), "'inputs' must be a list");
  EXPECT_EQ(ParseError("outputs: y"), "'outputs' must be a list");
  EXPECT_EQ(ParseError("inputs: [x]"), "inputs[0] must be a mapping");
  EXPECT_EQ(ParseError("inputs: [{name: x, datatype: FP32, shape: 4}]"),
            "field 'inputs[0].shape' has an invalid value");
  EXPECT_EQ(ParseError("inputs: [{name: x, datatype: FP32, shape: [a]}]"),
            "field 'inputs[0].shape' has an invalid value");
  EXPECT_EQ(ParseError("inputs: [{name: x, datatype: [FP32], shape: [1]}]"),
            "field 'inputs[0].datatype' has an invalid value");
}

TEST(ParseModelConfigTest, OutOfRangeValues) {
  EXPECT_EQ(ParseError("max_batch_size: -1"), "max_batch_size must be >= 0");
  EXPECT_EQ(ParseError("onnxruntime: {inter_op_threads: -1}"),
            "onnxruntime thread counts must be >= 0");
  EXPECT_EQ(ParseError("onnxruntime: {graph_optimization_level: max}"),
            "onnxruntime.graph_optimization_level 'max' is not one of disable, basic, "
            "extended, all");
  EXPECT_EQ(ParseError("inputs: [{name: x, datatype: FLOAT, shape: [1]}]"),
            "inputs[0].datatype 'FLOAT' is not a v2 datatype");
  EXPECT_EQ(ParseError("inputs: [{name: x, datatype: fp32, shape: [1]}]"),
            "inputs[0].datatype 'fp32' is not a v2 datatype");
  EXPECT_EQ(ParseError("inputs: [{name: x, datatype: FP32, shape: [-2, 3]}]"),
            "inputs[0].shape has a dimension below -1");
}

TEST(ParseModelConfigTest, TensorSpecFieldsAreRequired) {
  EXPECT_EQ(ParseError("inputs: [{datatype: FP32, shape: [1]}]"), "inputs[0] needs a 'name'");
  EXPECT_EQ(ParseError("inputs: [{name: x, shape: [1]}]"), "inputs[0] needs a 'datatype'");
  EXPECT_EQ(ParseError("outputs: [{name: y, datatype: FP32}]"), "outputs[0] needs a 'shape'");
}

TEST(ParseModelConfigTest, VersionPolicyForms) {
  auto latest = ParseModelConfig("version_policy: {latest: 3}");
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->version_policy.kind, VersionPolicy::Kind::kLatest);
  EXPECT_EQ(latest->version_policy.latest, 3);

  auto all = ParseModelConfig("version_policy: {all: true}");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->version_policy.kind, VersionPolicy::Kind::kAll);

  auto specific = ParseModelConfig("version_policy:\n  specific: [4, 2]\n");
  ASSERT_TRUE(specific.ok());
  EXPECT_EQ(specific->version_policy.kind, VersionPolicy::Kind::kSpecific);
  EXPECT_EQ(specific->version_policy.specific, (std::vector<int64_t>{4, 2}));
}

TEST(ParseModelConfigTest, VersionPolicyErrors) {
  EXPECT_EQ(ParseError("version_policy: latest"), "version_policy must be a mapping");
  EXPECT_EQ(ParseError("version_policy: {}"),
            "version_policy takes exactly one of latest, all, specific");
  EXPECT_EQ(ParseError("version_policy: {latest: 1, all: true}"),
            "version_policy takes exactly one of latest, all, specific");
  EXPECT_EQ(ParseError("version_policy: {latest: 0}"), "version_policy.latest must be at least 1");
  EXPECT_EQ(ParseError("version_policy: {latest: two}"),
            "field 'version_policy.latest' has an invalid value");
  EXPECT_EQ(ParseError("version_policy: {all: false}"), "version_policy.all must be true");
  EXPECT_EQ(ParseError("version_policy: {all: 3}"), "field 'version_policy.all' has an invalid value");
  EXPECT_EQ(ParseError("version_policy: {specific: []}"),
            "version_policy.specific must list at least one version");
  EXPECT_EQ(ParseError("version_policy: {specific: 3}"),
            "field 'version_policy.specific' has an invalid value");
  EXPECT_EQ(ParseError("version_policy: {specific: [1, 0]}"),
            "version_policy.specific lists version 0; versions start at 1");
  EXPECT_EQ(ParseError("version_policy: {specific: [-1]}"),
            "version_policy.specific lists version -1; versions start at 1");
  EXPECT_EQ(ParseError("version_policy: {specific: [2, 2]}"),
            "version_policy.specific lists version 2 twice");
}

// A fresh directory under the system temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "berth_config_test_XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void WriteFile(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

TEST(LoadModelConfigTest, NameDefaultsToDirectory) {
  TempDir tmp;
  WriteFile(tmp.path() / "iris" / "config.yaml", "max_batch_size: 2\n");
  auto c = LoadModelConfig(tmp.path() / "iris");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->name, "iris");
  EXPECT_EQ(c->max_batch_size, 2);
}

TEST(LoadModelConfigTest, ReadsYmlAndJson) {
  TempDir tmp;
  WriteFile(tmp.path() / "a" / "config.yml", "name: a\n");
  WriteFile(tmp.path() / "b" / "config.json", R"({"name": "b", "allow_nan": true})");
  auto a = LoadModelConfig(tmp.path() / "a");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->name, "a");
  auto b = LoadModelConfig(tmp.path() / "b");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_TRUE(b->allow_nan);
}

TEST(LoadModelConfigTest, NameMustMatchDirectory) {
  TempDir tmp;
  const fs::path file = tmp.path() / "iris" / "config.yaml";
  WriteFile(file, "name: other\n");
  auto c = LoadModelConfig(tmp.path() / "iris");
  EXPECT_EQ(c.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(c.status().message(),
            "iris/config.yaml: name 'other' differs from the directory name 'iris'");
}

TEST(LoadModelConfigTest, ExactlyOneConfigFile) {
  TempDir tmp;
  fs::create_directories(tmp.path() / "none");
  auto none = LoadModelConfig(tmp.path() / "none");
  EXPECT_EQ(none.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(none.status().message(),
            "no config.yaml, config.json or config.pbtxt in none/");

  WriteFile(tmp.path() / "two" / "config.yaml", "name: two\n");
  WriteFile(tmp.path() / "two" / "config.json", R"({"name": "two"})");
  auto two = LoadModelConfig(tmp.path() / "two");
  EXPECT_EQ(two.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(two.status().message(), "both config.yaml and config.json exist; keep one");
}

TEST(LoadModelConfigTest, ErrorsNameTheFile) {
  TempDir tmp;
  const fs::path file = tmp.path() / "m" / "config.yaml";
  WriteFile(file, "name: m\nbatch: 4\n");
  auto c = LoadModelConfig(tmp.path() / "m");
  EXPECT_EQ(c.status().code(), Status::Code::kInvalidArgument);
  // Relative to the repository: clients never learn where it sits.
  EXPECT_THAT(c.status().message(), StartsWith("m/config.yaml: unknown field 'batch'"));
}

// ---- ResolveSignature -------------------------------------------------------

ModelSignature FileSignature() {
  ModelSignature s;
  s.inputs = {{"a", DataType::kFp32, {-1, 3}}, {"b", DataType::kInt64, {-1, 1}}};
  s.outputs = {{"y", DataType::kFp32, {-1, 3}}, {"z", DataType::kInt64, {-1}}};
  return s;
}

std::string ResolveError(const ModelConfig& config, const ModelSignature& file = FileSignature()) {
  auto s = ResolveSignature(config, file);
  if (s.ok()) return "<resolved without error>";
  EXPECT_EQ(s.status().code(), Status::Code::kInvalidArgument);
  return s.status().message();
}

TEST(ResolveSignatureTest, EmptyDeclarationsTakeTheFile) {
  ModelConfig config;
  auto s = ResolveSignature(config, FileSignature());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->inputs, FileSignature().inputs);
  EXPECT_EQ(s->outputs, FileSignature().outputs);
}

TEST(ResolveSignatureTest, NarrowingAVariableDimensionIsAllowed) {
  ModelConfig config;
  config.inputs = {{"a", DataType::kFp32, {8, 3}}, {"b", DataType::kInt64, {8, 1}}};
  config.outputs = {{"y", DataType::kFp32, {8, 3}}};  // outputs may be a subset
  auto s = ResolveSignature(config, FileSignature());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->inputs, config.inputs);
  EXPECT_EQ(s->outputs, config.outputs);
}

TEST(ResolveSignatureTest, ConfigContradictingTheGraphIsRefused) {
  ModelConfig config;
  config.inputs = {{"a", DataType::kFp64, {-1, 3}}, {"b", DataType::kInt64, {-1, 1}}};
  EXPECT_EQ(ResolveError(config), "config declares input 'a' as FP64 but the model has FP32");

  config.inputs = {{"a", DataType::kFp32, {-1, 4}}, {"b", DataType::kInt64, {-1, 1}}};
  EXPECT_EQ(ResolveError(config),
            "config declares input 'a' with shape [-1, 4] but the model has [-1, 3]");

  // Widening a fixed dimension to -1 would let through what the graph refuses.
  config.inputs = {{"a", DataType::kFp32, {-1, -1}}, {"b", DataType::kInt64, {-1, 1}}};
  EXPECT_EQ(ResolveError(config),
            "config declares input 'a' with shape [-1, -1] but the model has [-1, 3]");

  config.inputs = {{"a", DataType::kFp32, {3}}, {"b", DataType::kInt64, {-1, 1}}};
  EXPECT_EQ(ResolveError(config),
            "config declares input 'a' with shape [3] but the model has [-1, 3]");

  config.inputs = {};
  config.outputs = {{"z", DataType::kInt32, {-1}}};
  EXPECT_EQ(ResolveError(config), "config declares output 'z' as INT32 but the model has INT64");
}

TEST(ResolveSignatureTest, DeclaredNamesMustExistAndCoverInputs) {
  ModelConfig config;
  config.inputs = {{"a", DataType::kFp32, {-1, 3}}, {"c", DataType::kInt64, {-1, 1}}};
  EXPECT_EQ(ResolveError(config), "config declares input 'c' but the model has no such input");

  config.inputs = {{"a", DataType::kFp32, {-1, 3}}};
  EXPECT_EQ(ResolveError(config), "config does not declare the model's input 'b'");

  config.inputs = {{"a", DataType::kFp32, {-1, 3}}, {"a", DataType::kFp32, {-1, 3}}};
  EXPECT_EQ(ResolveError(config), "input 'a' is declared twice");

  config.inputs = {};
  config.outputs = {{"w", DataType::kFp32, {-1}}};
  EXPECT_EQ(ResolveError(config), "config declares output 'w' but the model has no such output");
}

TEST(ResolveSignatureTest, UnknownRankInTheFileTrustsTheConfig) {
  ModelSignature file;
  file.inputs = {{"x", DataType::kFp32, {}}};
  file.outputs = {{"y", DataType::kFp32, {}}};
  ModelConfig config;
  config.inputs = {{"x", DataType::kFp32, {-1, 5}}};
  auto s = ResolveSignature(config, file);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->inputs[0].shape, (std::vector<int64_t>{-1, 5}));
}

TEST(ResolveSignatureTest, MaxBatchSizeNeedsVariableFirstDimension) {
  ModelConfig config;
  config.max_batch_size = 8;
  EXPECT_TRUE(ResolveSignature(config, FileSignature()).ok());

  config.inputs = {{"a", DataType::kFp32, {8, 3}}, {"b", DataType::kInt64, {-1, 1}}};
  EXPECT_EQ(ResolveError(config),
            "max_batch_size > 0 needs a variable first (batch) dimension, but input 'a' has "
            "shape [8, 3]");

  ModelSignature fixed;
  fixed.inputs = {{"x", DataType::kFp32, {1, 4}}};
  fixed.outputs = {{"y", DataType::kFp32, {1}}};
  config.inputs = {};
  EXPECT_EQ(ResolveError(config, fixed),
            "max_batch_size > 0 needs a variable first (batch) dimension, but input 'x' has "
            "shape [1, 4]");

  ModelSignature scalar;
  scalar.inputs = {{"s", DataType::kFp32, {}}};
  EXPECT_THAT(ResolveError(config, scalar), HasSubstr("but input 's' has shape []"));

  config.max_batch_size = 0;
  EXPECT_TRUE(ResolveSignature(config, fixed).ok());
}

}  // namespace
}  // namespace berth

namespace berth {
namespace {

TEST(ParseWarmupTest, DefaultsToOneGeneratedRequest) {
  auto c = ParseModelConfig("name: m\n");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->warmup.count, 1);
  EXPECT_TRUE(c->warmup.inputs.empty());
  c = ParseModelConfig("warmup: {count: 0}\n");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->warmup.count, 0);
}

TEST(ParseWarmupTest, InputsWithDataOfEveryKind) {
  auto c = ParseModelConfig(R"(warmup:
  count: 3
  inputs:
    - {name: x, datatype: FP32, shape: [2, 2], data: [[1.5, -2], [0, 4]]}
    - {name: ids, datatype: INT64, shape: [3], data: [-9000000000, 0, 7]}
    - {name: small, datatype: UINT8, shape: [2], data: [0, 255]}
    - {name: half, datatype: FP16, shape: [1], data: [0.5]}
    - {name: flag, datatype: BOOL, shape: [2], data: [true, false]}
    - {name: text, datatype: BYTES, shape: [1, 2], data: [["a b", ""]]}
    - {name: zeros, datatype: FP64, shape: [2]}
)");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->warmup.count, 3);
  const std::vector<Tensor>& in = c->warmup.inputs;
  ASSERT_EQ(in.size(), 7u);
  EXPECT_EQ(in[0].shape(), (std::vector<int64_t>{2, 2}));
  const float* x = in[0].data<float>();
  EXPECT_EQ(std::vector<float>(x, x + 4), (std::vector<float>{1.5f, -2, 0, 4}));
  const int64_t* ids = in[1].data<int64_t>();
  EXPECT_EQ(std::vector<int64_t>(ids, ids + 3), (std::vector<int64_t>{-9000000000, 0, 7}));
  EXPECT_EQ(in[2].data<uint8_t>()[1], 255);
  EXPECT_EQ(in[3].data<uint16_t>()[0], 0x3800);  // 0.5 in binary16
  EXPECT_EQ(in[4].data<uint8_t>()[0], 1);
  EXPECT_EQ(in[4].data<uint8_t>()[1], 0);
  EXPECT_EQ(in[5].strings(), (std::vector<std::string>{"a b", ""}));
  EXPECT_EQ(in[6].data<double>()[1], 0.0);
  for (const Tensor& t : in) EXPECT_TRUE(t.CheckConsistent().ok()) << t.name();
}

TEST(ParseWarmupTest, ErrorsNameTheField) {
  EXPECT_EQ(ParseError("warmup: {requests: 2}"),
            "unknown field 'requests' in warmup (allowed: count, inputs)");
  EXPECT_EQ(ParseError("warmup: {count: -1}"), "warmup.count must be from 0 (no warm-up) to 1000");
  EXPECT_EQ(ParseError("warmup: {count: 1001}"),
            "warmup.count must be from 0 (no warm-up) to 1000");
  EXPECT_EQ(ParseError("warmup: {count: many}"), "field 'warmup.count' has an invalid value");
  EXPECT_EQ(ParseError("warmup: {inputs: []}"), "'warmup.inputs' must be a non-empty list");
  EXPECT_EQ(ParseError("warmup: {inputs: [{name: x, datatype: FP32, shape: [1], values: [1]}]}"),
            "unknown field 'values' in warmup.inputs[0] (allowed: data, datatype, name, shape)");
  EXPECT_EQ(ParseError("warmup: {inputs: [{name: x, datatype: FP32}]}"),
            "warmup.inputs[0] needs a 'shape'");
  EXPECT_EQ(ParseError("warmup: {inputs: [{name: x, datatype: FP32, shape: [-1, 4]}]}"),
            "warmup.inputs[0].shape must be fully known (no -1): the warm-up request sends "
            "exactly this shape");
  EXPECT_EQ(ParseError("warmup:\n  inputs:\n    - {name: x, datatype: FP32, shape: [1]}\n"
                       "    - {name: x, datatype: FP32, shape: [1]}\n"),
            "warmup.inputs[1]: input 'x' is given twice");
  EXPECT_EQ(ParseError("warmup: {inputs: [{name: x, datatype: FP32, shape: [2], data: [1]}]}"),
            "warmup.inputs[0].data has 1 values but shape [2] holds 2");
  EXPECT_EQ(ParseError("warmup: {inputs: [{name: x, datatype: FP32, shape: [1], data: [1, 2]}]}"),
            "warmup.inputs[0].data has more values than its shape holds");
  EXPECT_EQ(ParseError("warmup: {inputs: [{name: x, datatype: UINT8, shape: [1], data: [256]}]}"),
            "warmup.inputs[0].data[0] is out of range for its datatype");
  EXPECT_EQ(ParseError("warmup: {inputs: [{name: x, datatype: UINT64, shape: [1], data: [-1]}]}"),
            "warmup.inputs[0].data[0] is out of range for its datatype");
  EXPECT_EQ(ParseError("warmup: {inputs: [{name: x, datatype: INT8, shape: [1], data: [-129]}]}"),
            "warmup.inputs[0].data[0] is out of range for its datatype");
  EXPECT_EQ(ParseError("warmup: {inputs: [{name: x, datatype: INT32, shape: [1], data: [x]}]}"),
            "field 'warmup.inputs[0].data[0]' has an invalid value");
  EXPECT_EQ(ParseError("warmup: {inputs: [{name: x, datatype: BOOL, shape: [1], data: [2]}]}"),
            "field 'warmup.inputs[0].data[0]' has an invalid value");
  EXPECT_EQ(ParseError("warmup: {inputs: [{name: x, datatype: FP32, shape: [1], data: [{a: 1}]}]}"),
            "warmup.inputs[0].data must hold scalars or lists");
  EXPECT_EQ(ParseError("warmup: {inputs: [{name: x, datatype: FP32, shape: [100000, 100000]}]}"),
            "warmup.inputs[0] is over the warm-up limit of 64 MiB");
  EXPECT_EQ(ParseError("warmup: {inputs: [{name: x, datatype: FP32, "
                       "shape: [4611686018427387904, 4]}]}"),
            "warmup.inputs[0] is over the warm-up limit of 64 MiB");
}

}  // namespace
}  // namespace berth

namespace berth {
namespace {

TEST(ParseModelConfigTest, MonitoringSection) {
  auto c = ParseModelConfig(
      "name: m\nmonitoring: {sample_rate: 0.5, window_count: 500, window_seconds: 0,\n"
      "  min_window: 30, psi_threshold: 0.25, wasserstein_threshold: 0.1, ks_threshold: 0.3,\n"
      "  js_threshold: 0.2}\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_DOUBLE_EQ(c->monitoring.sample_rate, 0.5);
  EXPECT_EQ(c->monitoring.window_count, 500);
  EXPECT_EQ(c->monitoring.window_seconds, 0);
  EXPECT_EQ(c->monitoring.min_window, 30);
  EXPECT_DOUBLE_EQ(c->monitoring.psi_threshold, 0.25);
  EXPECT_DOUBLE_EQ(c->monitoring.wasserstein_threshold, 0.1);
  EXPECT_DOUBLE_EQ(c->monitoring.ks_threshold, 0.3);
  EXPECT_DOUBLE_EQ(c->monitoring.js_threshold, 0.2);
  // Absent or empty: the defaults.
  for (const char* text : {"name: m\n", "name: m\nmonitoring:\n", "name: m\nmonitoring: {}\n"}) {
    auto d = ParseModelConfig(text);
    ASSERT_TRUE(d.ok()) << text;
    EXPECT_EQ(d->monitoring, MonitoringConfig()) << text;
  }
  EXPECT_DOUBLE_EQ(MonitoringConfig().sample_rate, 0.1);

  auto error = [](const std::string& text) {
    auto r = ParseModelConfig("name: m\n" + text);
    return r.ok() ? std::string("ok") : r.status().message();
  };
  EXPECT_THAT(error("monitoring: {sample: 1}"),
              StartsWith("unknown field 'sample' in monitoring (allowed: "));
  EXPECT_EQ(error("monitoring: {sample_rate: 1.5}"), "monitoring.sample_rate must be from 0 to " +
                                                         std::to_string(1.0));
  EXPECT_EQ(error("monitoring: {sample_rate: -0.1}"),
            "monitoring.sample_rate must be from 0 to " + std::to_string(1.0));
  EXPECT_EQ(error("monitoring: {sample_rate: .nan}"),
            "monitoring.sample_rate must be from 0 to " + std::to_string(1.0));
  EXPECT_EQ(error("monitoring: {window_count: 0}"),
            "monitoring.window_count must be from 1 to 1000000");
  EXPECT_EQ(error("monitoring: {window_count: x}"),
            "field 'monitoring.window_count' has an invalid value");
  EXPECT_EQ(error("monitoring: 3"), "monitoring must be a mapping");
}

TEST(ParseModelConfigTest, FeedbackSection) {
  EXPECT_FALSE(ParseModelConfig("name: m\n")->monitoring.feedback.enabled);
  // Present, even empty: on, with the defaults.
  for (const char* text : {"name: m\nmonitoring: {feedback: {}}\n",
                           "name: m\nmonitoring:\n  feedback:\n"}) {
    auto c = ParseModelConfig(text);
    ASSERT_TRUE(c.ok()) << text << c.status().message();
    EXPECT_TRUE(c->monitoring.feedback.enabled) << text;
    EXPECT_DOUBLE_EQ(c->monitoring.feedback.retention_hours, 168) << text;
    EXPECT_EQ(c->monitoring.feedback.positive_class, "1") << text;
  }
  auto c = ParseModelConfig(
      "name: m\nmonitoring:\n  feedback: {retention_hours: 0.5, max_predictions: 10,\n"
      "    window_count: 20, task: regression, label_output: y, score_output: p,\n"
      "    positive_class: yes_}\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  const FeedbackConfig& f = c->monitoring.feedback;
  EXPECT_DOUBLE_EQ(f.retention_hours, 0.5);
  EXPECT_EQ(f.max_predictions, 10);
  EXPECT_EQ(f.window_count, 20);
  EXPECT_EQ(f.task, "regression");
  EXPECT_EQ(f.label_output, "y");
  EXPECT_EQ(f.score_output, "p");
  EXPECT_EQ(f.positive_class, "yes_");

  auto error = [](const std::string& text) {
    auto r = ParseModelConfig("name: m\nmonitoring:\n  feedback: " + text + "\n");
    return r.ok() ? std::string("ok") : r.status().message();
  };
  EXPECT_THAT(error("{retention: 1}"),
              StartsWith("unknown field 'retention' in monitoring.feedback (allowed: "));
  EXPECT_THAT(error("{retention_hours: 0}"),
              StartsWith("monitoring.feedback.retention_hours must be above 0"));
  EXPECT_THAT(error("{retention_hours: .nan}"),
              StartsWith("monitoring.feedback.retention_hours must be above 0"));
  EXPECT_EQ(error("{window_count: 0}"), "monitoring.feedback.window_count must be from 1 to 1000000");
  EXPECT_EQ(error("{task: ranking}"),
            "monitoring.feedback.task must be 'classification' or 'regression', not 'ranking'");
  EXPECT_EQ(error("{positive_class: ''}"), "monitoring.feedback.positive_class must be 1 to 256 bytes");
  EXPECT_EQ(error("3"), "monitoring.feedback must be a mapping");
}

}  // namespace
}  // namespace berth
