#include "core/request_validator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/float16.h"
#include "core/scheduler.h"
#include "core/tensor_testing.h"

namespace berth {
namespace {

using ::berth::testing::MakeTensor;
using ::testing::HasSubstr;

// A backend that only declares a signature; the validator never runs it.
class FakeBackend final : public Backend {
 public:
  explicit FakeBackend(ModelSignature signature) : signature_(std::move(signature)) {}
  const ModelSignature& signature() const override { return signature_; }
  Status Execute(std::span<const Tensor>, std::span<const std::string>,
                 std::vector<Tensor>*, BackendTimings*) override {
    return Status::Internal("FakeBackend::Execute must not be called by the validator");
  }

 private:
  ModelSignature signature_;
};

// Model "m": inputs a: FP32 [-1, 3], b: INT64 [-1, 1]; outputs y, z.
std::unique_ptr<Model> MakeModel(int64_t max_batch_size = 4, bool allow_nan = false) {
  auto m = std::make_unique<Model>();
  m->name = "m";
  m->version = 1;
  m->config.name = "m";
  m->config.max_batch_size = max_batch_size;
  m->config.allow_nan = allow_nan;
  m->signature.inputs = {{"a", DataType::kFp32, {-1, 3}}, {"b", DataType::kInt64, {-1, 1}}};
  m->signature.outputs = {{"y", DataType::kFp32, {-1, 3}}, {"z", DataType::kInt64, {-1}}};
  m->backend = std::make_unique<FakeBackend>(m->signature);
  return m;
}

Tensor A(int64_t batch, float fill = 1.0f) {
  return MakeTensor<float>("a", DataType::kFp32, {batch, 3},
                     std::vector<float>(static_cast<size_t>(batch) * 3, fill));
}

Tensor B(int64_t batch) {
  return MakeTensor<int64_t>("b", DataType::kInt64, {batch, 1},
                       std::vector<int64_t>(static_cast<size_t>(batch), 7));
}

InferenceRequest Request(std::vector<Tensor> inputs, std::vector<std::string> outputs = {}) {
  InferenceRequest r;
  r.model_name = "m";
  r.inputs = std::move(inputs);
  for (auto& o : outputs) r.outputs.push_back({std::move(o), {}});
  return r;
}

void ExpectInvalid(const Status& s, const std::string& message) {
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_EQ(s.message(), message);
}

TEST(RequestValidatorTest, AcceptsAValidRequest) {
  auto m = MakeModel();
  EXPECT_TRUE(ValidateRequest(*m, Request({A(2), B(2)})).ok());
  EXPECT_TRUE(ValidateRequest(*m, Request({B(1), A(1)}, {"z", "y"})).ok());  // any order
  EXPECT_TRUE(ValidateRequest(*m, Request({A(4), B(4)})).ok());             // at the limit
}

TEST(RequestValidatorTest, MissingInput) {
  auto m = MakeModel();
  ExpectInvalid(ValidateRequest(*m, Request({A(1)})), "missing input 'b' (INT64 [-1, 1])");
  ExpectInvalid(ValidateRequest(*m, Request({})), "missing input 'a' (FP32 [-1, 3])");
}

TEST(RequestValidatorTest, UnknownInputListsKnownOnes) {
  auto m = MakeModel();
  Tensor c = MakeTensor<float>("c", DataType::kFp32, {1}, {1.0f});
  ExpectInvalid(ValidateRequest(*m, Request({A(1), B(1), c})),
                "model 'm' has no input 'c' (inputs: 'a', 'b')");
}

TEST(RequestValidatorTest, DuplicateInput) {
  auto m = MakeModel();
  ExpectInvalid(ValidateRequest(*m, Request({A(1), B(1), A(1)})),
                "input 'a' is given more than once");
}

TEST(RequestValidatorTest, DatatypeMismatch) {
  auto m = MakeModel();
  Tensor a = MakeTensor<double>("a", DataType::kFp64, {1, 3}, {1, 2, 3});
  ExpectInvalid(ValidateRequest(*m, Request({a, B(1)})),
                "input 'a' has datatype FP64, expected FP32");
}

TEST(RequestValidatorTest, ShapeMismatch) {
  auto m = MakeModel();
  Tensor wide = MakeTensor<float>("a", DataType::kFp32, {1, 4}, {1, 2, 3, 4});
  ExpectInvalid(ValidateRequest(*m, Request({wide, B(1)})),
                "input 'a' has shape [1, 4], expected [-1, 3]");
  Tensor flat = MakeTensor<float>("a", DataType::kFp32, {3}, {1, 2, 3});
  ExpectInvalid(ValidateRequest(*m, Request({flat, B(1)})),
                "input 'a' has shape [3], expected [-1, 3]");
}

TEST(RequestValidatorTest, DataMustFillTheShape) {
  auto m = MakeModel();
  Tensor a = MakeTensor<float>("a", DataType::kFp32, {2, 3}, {1, 2, 3});
  ExpectInvalid(ValidateRequest(*m, Request({a, B(2)})),
                "tensor 'a' has 12 bytes but shape [2, 3] of FP32 needs 24");
}

TEST(RequestValidatorTest, BatchOverMaxBatchSize) {
  auto m = MakeModel(4);
  ExpectInvalid(ValidateRequest(*m, Request({A(5), B(5)})),
                "input 'a' has batch size 5, over the model's max_batch_size 4");
}

TEST(RequestValidatorTest, InputsMustAgreeOnTheBatch) {
  auto m = MakeModel(4);
  ExpectInvalid(ValidateRequest(*m, Request({A(2), B(3)})),
                "inputs disagree on the batch size (2 and 3)");
}

TEST(RequestValidatorTest, NoBatchLimitWithoutMaxBatchSize) {
  auto m = MakeModel(0);
  EXPECT_TRUE(ValidateRequest(*m, Request({A(100), B(100)})).ok());
  // Without batching the inputs' first dimensions are independent.
  EXPECT_TRUE(ValidateRequest(*m, Request({A(2), B(3)})).ok());
}

TEST(RequestValidatorTest, NanRefusedUnlessAllowed) {
  auto m = MakeModel();
  Tensor a = A(2);
  a.data<float>()[4] = std::numeric_limits<float>::quiet_NaN();
  Status s = ValidateRequest(*m, Request({a, B(2)}));
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("input 'a' holds a non-finite value ("));
  EXPECT_THAT(s.message(), HasSubstr("nan"));
  EXPECT_THAT(s.message(),
              HasSubstr("at flat index 4; this model does not accept NaN or Infinity"));

  a.data<float>()[4] = -std::numeric_limits<float>::infinity();
  s = ValidateRequest(*m, Request({a, B(2)}));
  EXPECT_THAT(s.message(), HasSubstr("(-inf) at flat index 4"));

  auto lenient = MakeModel(4, /*allow_nan=*/true);
  EXPECT_TRUE(ValidateRequest(*lenient, Request({a, B(2)})).ok());
}

TEST(RequestValidatorTest, NanCheckCoversFp16AndFp64) {
  auto m = MakeModel();
  m->signature.inputs = {{"h", DataType::kFp16, {2}}, {"d", DataType::kFp64, {2}}};
  Tensor h = MakeTensor<uint16_t>("h", DataType::kFp16, {2}, {FloatToHalf(1.0f), 0x7c00});
  Tensor d = MakeTensor<double>("d", DataType::kFp64, {2}, {1.0, 2.0});
  Status s = ValidateRequest(*m, Request({h, d}));
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("input 'h' holds a non-finite value (inf) at flat index 1"));

  h.data<uint16_t>()[1] = FloatToHalf(2.0f);
  d.data<double>()[0] = std::numeric_limits<double>::quiet_NaN();
  s = ValidateRequest(*m, Request({h, d}));
  EXPECT_THAT(s.message(), HasSubstr("input 'd' holds a non-finite value"));
  EXPECT_THAT(s.message(), HasSubstr("at flat index 0"));

  d.data<double>()[0] = 1e308;  // large but finite
  EXPECT_TRUE(ValidateRequest(*m, Request({h, d})).ok());
}

TEST(RequestValidatorTest, IntegerInputsAreNotCheckedForNan) {
  auto m = MakeModel();
  m->signature.inputs = {{"i", DataType::kInt32, {1}}};
  // 0x7fc00000 is a NaN bit pattern if read as a float; as INT32 it is a number.
  Tensor i = MakeTensor<int32_t>("i", DataType::kInt32, {1}, {0x7fc00000});
  EXPECT_TRUE(ValidateRequest(*m, Request({i})).ok());
}

TEST(RequestValidatorTest, UnknownOutput) {
  auto m = MakeModel();
  ExpectInvalid(ValidateRequest(*m, Request({A(1), B(1)}, {"y", "q"})),
                "model 'm' has no output 'q'");
}

TEST(RequestValidatorTest, DuplicateOutput) {
  auto m = MakeModel();
  ExpectInvalid(ValidateRequest(*m, Request({A(1), B(1)}, {"y", "y"})),
                "output 'y' is requested more than once");
}

// ---- the decoders' checks, shared by REST and gRPC ------------------------

TEST(DecoderChecksTest, InputDataType) {
  auto fp32 = InputDataType("x", "FP32");
  ASSERT_TRUE(fp32.ok());
  EXPECT_EQ(*fp32, DataType::kFp32);
  ExpectInvalid(InputDataType("x", "fp32").status(), "input 'x' has unknown datatype 'fp32'");
  ExpectInvalid(InputDataType("x", "").status(), "input 'x' has unknown datatype ''");
}

TEST(DecoderChecksTest, CheckInputShape) {
  EXPECT_TRUE(CheckInputShape("x", std::vector<int64_t>{}).ok());
  EXPECT_TRUE(CheckInputShape("x", std::vector<int64_t>{0, 4}).ok());
  ExpectInvalid(CheckInputShape("x", std::vector<int64_t>{2, -1}),
                "input 'x' has a negative dimension in shape [2, -1]");
  ExpectInvalid(CheckInputShape("x", std::vector<int64_t>{1LL << 40, 1LL << 40}),
                "input 'x' has a shape too large: [1099511627776, 1099511627776]");
}

TEST(DecoderChecksTest, CheckKnownParameter) {
  EXPECT_TRUE(CheckKnownParameter("binary_data", true, "parameters").ok());
  EXPECT_TRUE(CheckKnownParameter("classification", int64_t{3}, "parameters").ok());
  EXPECT_TRUE(CheckKnownParameter("anything", std::string("else"), "parameters").ok());
  ExpectInvalid(CheckKnownParameter("binary_data", int64_t{1}, "outputs[0].parameters"),
                "parameter 'binary_data' in 'outputs[0].parameters' must be a boolean (true or "
                "false)");
  ExpectInvalid(CheckKnownParameter("binary_data_output", std::string("true"), "parameters"),
                "parameter 'binary_data_output' in 'parameters' must be a boolean (true or false)");
  ExpectInvalid(CheckKnownParameter("classification", int64_t{-1}, "parameters"),
                "parameter 'classification' in 'parameters' must be a non-negative integer");
  ExpectInvalid(CheckKnownParameter("classification", 2.0, "parameters"),
                "parameter 'classification' in 'parameters' must be a non-negative integer");
  EXPECT_TRUE(CheckKnownParameter("timeout", int64_t{1000}, "parameters").ok());
  ExpectInvalid(CheckKnownParameter("timeout", int64_t{-1}, "parameters"),
                "parameter 'timeout' in 'parameters' must be a non-negative integer");
  ExpectInvalid(CheckKnownParameter("timeout", std::string("1s"), "parameters"),
                "parameter 'timeout' in 'parameters' must be a non-negative integer");
}

}  // namespace
}  // namespace berth
