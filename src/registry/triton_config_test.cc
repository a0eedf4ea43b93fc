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
    model_warmup [ { name: "w", batch_size: 1 } ]
    response_cache { enable: true }
    parameters { key: "cudnn_conv_algo_search" value: { string_value: "1" } }
  )pb");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  std::string all;
  for (const auto& w : parsed->warnings) all += w + "\n";
  EXPECT_NE(all.find("'optimization' is not supported by Berth and is ignored"), std::string::npos)
      << all;
  EXPECT_NE(all.find("'model_warmup'"), std::string::npos) << all;
  EXPECT_NE(all.find("'response_cache'"), std::string::npos) << all;
  EXPECT_NE(all.find("parameter 'cudnn_conv_algo_search'"), std::string::npos) << all;
  EXPECT_NE(all.find("line 3:"), std::string::npos) << all;
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
