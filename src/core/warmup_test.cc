#include "core/warmup.h"

#include <gtest/gtest.h>

#include "core/tensor_testing.h"

namespace berth {
namespace {

using ::berth::testing::TensorValues;

std::unique_ptr<Model> WithInputs(std::vector<TensorSpec> inputs) {
  auto m = std::make_unique<Model>();
  m->name = "m";
  m->version = 1;
  m->signature.inputs = std::move(inputs);
  return m;
}

TEST(WarmupInputsTest, GeneratedFromTheSignature) {
  const auto m = WithInputs({{"x", DataType::kFp32, {-1, 4}},
                              {"ids", DataType::kInt64, {2, -1, 3}},
                              {"text", DataType::kBytes, {-1}},
                              {"flag", DataType::kBool, {}}});
  StatusOr<std::vector<Tensor>> inputs = WarmupInputs(*m);
  ASSERT_TRUE(inputs.ok()) << inputs.status().ToString();
  ASSERT_EQ(inputs->size(), 4u);
  const std::vector<Tensor>& t = *inputs;
  EXPECT_EQ(t[0].name(), "x");
  EXPECT_EQ(t[0].datatype(), DataType::kFp32);
  EXPECT_EQ(t[0].shape(), (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(TensorValues<float>(t[0]), (std::vector<float>{0, 0, 0, 0}));
  EXPECT_EQ(t[1].shape(), (std::vector<int64_t>{2, 1, 3}));
  EXPECT_EQ(TensorValues<int64_t>(t[1]), std::vector<int64_t>(6, 0));
  EXPECT_EQ(t[2].shape(), (std::vector<int64_t>{1}));
  EXPECT_EQ(t[2].strings(), (std::vector<std::string>{""}));
  EXPECT_EQ(t[3].shape(), (std::vector<int64_t>{}));
  EXPECT_EQ(t[3].bytes().size(), 1u);
  for (const Tensor& each : t) EXPECT_TRUE(each.CheckConsistent().ok()) << each.name();
}

TEST(WarmupInputsTest, TheConfigsInputsWin) {
  auto m = WithInputs({{"x", DataType::kFp32, {-1, 2}}});
  Tensor given("x", DataType::kFp32, {3, 2});
  ASSERT_TRUE(given.Allocate().ok());
  m->config.warmup.inputs.push_back(given);
  StatusOr<std::vector<Tensor>> inputs = WarmupInputs(*m);
  ASSERT_TRUE(inputs.ok());
  ASSERT_EQ(inputs->size(), 1u);
  EXPECT_EQ((*inputs)[0].shape(), (std::vector<int64_t>{3, 2}));
}

TEST(WarmupInputsTest, AnOverflowingFixedShapeIsAnError) {
  const auto m = WithInputs({{"x", DataType::kFp32, {1ll << 40, 1ll << 40}}});
  StatusOr<std::vector<Tensor>> inputs = WarmupInputs(*m);
  ASSERT_FALSE(inputs.ok());
  EXPECT_NE(inputs.status().message().find("warm-up input 'x'"), std::string::npos);
}

TEST(WarmUpTest, ACountOfZeroRunsNothing) {
  auto m = WithInputs({{"x", DataType::kFp32, {-1}}});  // no backend: running would crash
  m->config.warmup.count = 0;
  EXPECT_TRUE(WarmUp(*m).ok());
}

TEST(WarmUpTest, AConfigInputOfTheWrongShapeFailsValidation) {
  auto m = WithInputs({{"x", DataType::kFp32, {-1, 4}}});  // no backend: never reached
  Tensor wrong("x", DataType::kFp32, {1, 3});
  ASSERT_TRUE(wrong.Allocate().ok());
  m->config.warmup.inputs.push_back(wrong);
  Status s = WarmUp(*m);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("'x'"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace berth
