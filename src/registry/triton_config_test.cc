#include "registry/triton_config.h"

#include <gtest/gtest.h>

namespace berth {
namespace {

// The config.pbtxt of Triton's own ONNX examples, with a dynamic batcher.
constexpr const char* kTritonConfig = R"pb(
name: "iris"
platform: "onnxruntime_onnx"
max_batch_size: 8
version_policy: { specific: { versions: [1, 3] } }
input [
  {
    name: "X"
    data_type: TYPE_FP32
    dims: [ 4 ]
  }
]
output [
  { name: "label", data_type: TYPE_INT64, dims: [ ] },
  { name: "probabilities", data_type: TYPE_FP32, dims: [ 3 ] }
]
dynamic_batching { preferred_batch_size: [ 4, 8 ] max_queue_delay_microseconds: 200 }
instance_group [ { count: 2, kind: KIND_CPU } ]
parameters { key: "intra_op_thread_count" value: { string_value: "2" } }
)pb";

TEST(TritonConfigTest, ReadsWhatBerthHonours) {
  auto parsed = ParseTritonConfig(kTritonConfig);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const ModelConfig& c = parsed->config;
  EXPECT_EQ(c.name, "iris");
  EXPECT_EQ(c.backend, "onnx");
  EXPECT_EQ(c.max_batch_size, 8);
  EXPECT_EQ(c.version_policy.kind, VersionPolicy::Kind::kSpecific);
  EXPECT_EQ(c.version_policy.specific, (std::vector<int64_t>{1, 3}));
  ASSERT_EQ(c.inputs.size(), 1u);
  EXPECT_EQ(c.inputs[0].name, "X");
  EXPECT_EQ(c.inputs[0].datatype, DataType::kFp32);
  // Triton's dims leave out the batch dimension; Berth's shapes have it.
  EXPECT_EQ(c.inputs[0].shape, (std::vector<int64_t>{-1, 4}));
  ASSERT_EQ(c.outputs.size(), 2u);
  EXPECT_EQ(c.outputs[0].shape, (std::vector<int64_t>{-1}));
  EXPECT_EQ(c.outputs[1].shape, (std::vector<int64_t>{-1, 3}));
  ASSERT_TRUE(c.dynamic_batching.has_value());
  EXPECT_EQ(c.dynamic_batching->preferred_batch_sizes, (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(c.dynamic_batching->max_queue_delay_microseconds, 200);
  EXPECT_EQ(c.instance_count, 2);
  EXPECT_EQ(c.onnxruntime.intra_op_threads, 2);
  EXPECT_TRUE(parsed->warnings.empty());
}

TEST(TritonConfigTest, TheDefaultQueuePolicysSizeBoundsTheQueue) {
  auto parsed = ParseTritonConfig(R"pb(
    max_batch_size: 4
    dynamic_batching { default_queue_policy { max_queue_size: 7 } }
  )pb");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->config.dynamic_batching->max_queue_size, 7);
  EXPECT_TRUE(parsed->warnings.empty());
  // 0 is Triton's "no limit": Berth keeps its bounded default.
  parsed = ParseTritonConfig(R"pb(
    max_batch_size: 4
    dynamic_batching { default_queue_policy { max_queue_size: 0 default_timeout_microseconds: 5 } }
  )pb");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->config.dynamic_batching->max_queue_size, DynamicBatchingConfig{}.max_queue_size);
  ASSERT_EQ(parsed->warnings.size(), 1u);
  EXPECT_NE(parsed->warnings[0].find("only max_queue_size is honoured"), std::string::npos);
}

TEST(TritonConfigTest, BackendFormAndLatestPolicy) {
  auto parsed = ParseTritonConfig(R"pb(
    backend: "onnxruntime"
    version_policy: { latest: { num_versions: 2 } }
    input [ { name: "x", data_type: TYPE_STRING, dims: [ -1, 1 ] } ]
  )pb");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->config.version_policy.kind, VersionPolicy::Kind::kLatest);
  EXPECT_EQ(parsed->config.version_policy.latest, 2);
  EXPECT_EQ(parsed->config.max_batch_size, 0);
  EXPECT_EQ(parsed->config.inputs[0].datatype, DataType::kBytes);
  EXPECT_EQ(parsed->config.inputs[0].shape, (std::vector<int64_t>{-1, 1}));
}

TEST(TritonConfigTest, FieldsThatOnlyTuneTritonAreNamedInWarnings) {
  auto parsed = ParseTritonConfig(R"pb(
    platform: "onnxruntime_onnx"
    optimization { graph { level: 1 } }
    response_cache { enable: true }
    parameters { key: "cudnn_conv_algo_search" value: { string_value: "1" } }
  )pb");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  std::string all;
  for (const auto& w : parsed->warnings) all += w + "\n";
  EXPECT_NE(all.find("'optimization' is not supported by Berth and is ignored"), std::string::npos)
      << all;
  EXPECT_NE(all.find("'response_cache'"), std::string::npos) << all;
  EXPECT_NE(all.find("parameter 'cudnn_conv_algo_search'"), std::string::npos) << all;
  EXPECT_NE(all.find("line 3:"), std::string::npos) << all;
  EXPECT_EQ(all.find("model_warmup"), std::string::npos) << all;
}

// model_warmup becomes the version's warm-up request: [batch_size] + dims,
// zeros or seeded values in range, run `count` times (0: once).
TEST(TritonConfigTest, ModelWarmupIsTheWarmupRequest) {
  auto parsed = ParseTritonConfig(R"pb(
    max_batch_size: 8
    input [ { name: "X" data_type: TYPE_FP32 dims: [ 4 ] },
            { name: "sex" data_type: TYPE_STRING dims: [ 1 ] } ]
    model_warmup [ {
      name: "sample"
      batch_size: 2
      count: 3
      inputs { key: "X" value: { data_type: TYPE_FP32 dims: [ 4 ] random_data: true } }
      inputs { key: "sex" value: { data_type: TYPE_STRING dims: [ 1 ] random_data: true } }
    } ]
  )pb");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(parsed->warnings.empty()) << parsed->warnings[0];
  const WarmupConfig& w = parsed->config.warmup;
  EXPECT_EQ(w.count, 3);
  ASSERT_EQ(w.inputs.size(), 2u);
  EXPECT_EQ(w.inputs[0].name(), "X");
  EXPECT_EQ(w.inputs[0].datatype(), DataType::kFp32);
  EXPECT_EQ(w.inputs[0].shape(), (std::vector<int64_t>{2, 4}));
  const auto* x = reinterpret_cast<const float*>(w.inputs[0].bytes().data());
  bool varied = false;
  for (int i = 0; i < 8; ++i) {
    EXPECT_TRUE(x[i] >= 0.f && x[i] < 1.f) << x[i];
    varied = varied || x[i] != x[0];
  }
  EXPECT_TRUE(varied);
  EXPECT_EQ(w.inputs[1].shape(), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(w.inputs[1].strings(), (std::vector<std::string>{"", ""}));

  auto zeros = ParseTritonConfig(R"pb(
    input [ { name: "X" data_type: TYPE_INT64 dims: [ 3 ] } ]
    model_warmup {
      name: "z"
      batch_size: 1
      inputs { key: "X" value: { data_type: TYPE_INT64 dims: [ 3 ] zero_data: true } }
    }
  )pb");
  ASSERT_TRUE(zeros.ok()) << zeros.status().ToString();
  EXPECT_EQ(zeros->config.warmup.count, 1);
  ASSERT_EQ(zeros->config.warmup.inputs.size(), 1u);
  EXPECT_EQ(zeros->config.warmup.inputs[0].shape(), (std::vector<int64_t>{3}));
  EXPECT_EQ(zeros->config.warmup.inputs[0].bytes(), std::vector<std::byte>(24));

  // No model_warmup: the generated warm-up request, as before.
  auto none = ParseTritonConfig("max_batch_size: 4");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->config.warmup.count, 1);
  EXPECT_TRUE(none->config.warmup.inputs.empty());
}

TEST(TritonConfigTest, ModelWarmupThatBerthCannotRunIsRefused) {
  const std::string input = R"(input { name: "X" data_type: TYPE_FP32 dims: [ 4 ] } )";
  const auto sample = [](const std::string& fields, const std::string& data) {
    return "model_warmup [ { name: \"w\" " + fields +
           " inputs { key: \"X\" value: { data_type: TYPE_FP32 dims: [ 4 ] " + data +
           " } } } ]";
  };
  struct Case {
    std::string text;
    const char* words;
  };
  const Case cases[] = {
      {input + sample("batch_size: 1", "input_data_file: \"raw_x\""),
       "model_warmup 'w': input 'X': input_data_file is not supported by Berth"},
      {input + sample("batch_size: 1", ""), "input 'X' needs zero_data or random_data"},
      {"max_batch_size: 4 " + input + sample("batch_size: 5", "zero_data: true"),
       "batch_size must be from 1 to max_batch_size (4), not 5"},
      {"max_batch_size: 4 " + input + sample("", "zero_data: true"),
       "batch_size must be from 1 to max_batch_size (4), not 0"},
      {input + sample("batch_size: 2", "zero_data: true"), "batch_size must be 1 for a model"},
      {input + sample("batch_size: 1 count: 1001", "zero_data: true"), "count must be at most"},
      {input + sample("batch_size: 1", "zero_data: true") +
           sample("batch_size: 1", "zero_data: true"),
       "model_warmup has 2 samples"},
      {input + R"(model_warmup { name: "w" batch_size: 1
          inputs { key: "X" value: { data_type: TYPE_FP32 dims: [ -1 ] zero_data: true } } })",
       "dims must be fully known"},
      {input + R"(model_warmup { name: "w" batch_size: 1
          inputs { key: "X" value: { data_type: TYPE_FP32 dims: [ 1000000, 1000000 ]
                                     zero_data: true } } })",
       "over the warm-up limit"},
      {input + R"(model_warmup { name: "w" batch_size: 1
          inputs { key: "X" value: { dims: [ 4 ] zero_data: true } } })",
       "model_warmup 'w': 'X' needs a data_type"},
      {input + R"(model_warmup { name: "w" batch_size: 1 })", "model_warmup 'w' has no inputs"},
  };
  for (const Case& c : cases) {
    auto parsed = ParseTritonConfig(c.text);
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_NE(parsed.status().message().find(c.words), std::string::npos)
        << c.text << " -> " << parsed.status().message();
  }
}

// What GET /v2/models/{m}/config answers loads back (a repository load's
// `config` parameter) without a warning about the registry's feature names.
TEST(TritonConfigTest, TheRegistrysFeatureNamesParameterIsReadSilently) {
  auto parsed = ParseTritonConfig(R"pb(
    platform: "onnxruntime_onnx"
    parameters { key: "feature_names" value: { string_value: "[\"a\", \"b\"]" } }
    parameters { key: "intra_op_thread_count" value: { string_value: "2" } }
  )pb");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(parsed->warnings.empty()) << parsed->warnings.front();
  EXPECT_EQ(parsed->config.onnxruntime.intra_op_threads, 2);
}

TEST(TritonConfigTest, FieldsThatChangeAnswersAreRefused) {
  struct Case {
    const char* text;
    const char* words;
  };
  const Case cases[] = {
      {"sequence_batching { }", "'sequence_batching' is not supported"},
      {"ensemble_scheduling { step [ ] }", "'ensemble_scheduling' is not supported"},
      {"platform: \"tensorflow_savedmodel\"", "platform 'tensorflow_savedmodel' is not supported"},
      {"backend: \"python\"", "backend 'python' is not supported"},
      {"instance_group [ { kind: KIND_GPU } ]", "asks for GPUs"},
      {"input [ { name: \"x\" data_type: TYPE_FP32 dims: [1] reshape: { shape: [ ] } } ]",
       "reshape"},
      {"input [ { name: \"x\" data_type: TYPE_BF16 dims: [1] } ]", "TYPE_BF16"},
      {"input [ { name: \"x\" dims: [1] } ]", "needs a data_type"},
      {"default_model_filename: \"m.onnx\"", "default_model_filename 'm.onnx'"},
      {"dynamic_batching { }", "needs max_batch_size > 0"},
      {"max_batch_size: -1", "max_batch_size must be >= 0"},
      {"parameters { key: \"intra_op_thread_count\" value: { string_value: \"x\" } }",
       "must be a non-negative integer"},
      {"name: \"x\" name_typo { }", "is not supported by Berth and is ignored"},
      {"max_batch_size: \"eight\"", "line 1"},
      {"input [ { name: \"x\" ", "line 1"},
  };
  for (const Case& c : cases) {
    auto parsed = ParseTritonConfig(c.text);
    if (std::string(c.words).find("ignored") != std::string::npos) {
      ASSERT_TRUE(parsed.ok()) << c.text;
      ASSERT_FALSE(parsed->warnings.empty()) << c.text;
      EXPECT_NE(parsed->warnings[0].find("'name_typo'"), std::string::npos) << parsed->warnings[0];
      continue;
    }
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_NE(parsed.status().message().find(c.words), std::string::npos)
        << c.text << " -> " << parsed.status().message();
  }
}

}  // namespace
}  // namespace berth
