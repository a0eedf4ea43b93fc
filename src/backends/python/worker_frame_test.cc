#include "backends/python/worker_frame.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace berth::python {
namespace {

// The body of a whole frame, after checking its length prefix.
std::string Body(const std::string& frame) {
  EXPECT_GE(frame.size(), 4u);
  uint32_t length = 0;
  std::memcpy(&length, frame.data(), 4);
  EXPECT_EQ(length, frame.size() - 4);
  return frame.substr(4);
}

Tensor Floats(std::string name, std::vector<int64_t> shape, std::vector<float> values) {
  Tensor t(std::move(name), DataType::kFp32, std::move(shape));
  t.bytes().resize(values.size() * sizeof(float));
  std::memcpy(t.bytes().data(), values.data(), t.bytes().size());
  return t;
}

TEST(WorkerFrameTest, InferRoundTripsNumbersAndBytes) {
  std::vector<Tensor> inputs;
  inputs.push_back(Floats("x", {2, 2}, {1.5f, -2, 0, 3.25f}));
  Tensor words("words", DataType::kBytes, {3});
  words.strings() = {"a", std::string("nul\0byte", 8), ""};
  inputs.push_back(words);
  const std::vector<std::string> names = {"label", "probabilities"};

  auto frame = EncodeInfer(inputs, names);
  ASSERT_TRUE(frame.ok()) << frame.status().message();
  const std::string body = Body(*frame);
  ASSERT_EQ(*KindOf(body), FrameKind::kInfer);

  std::vector<Tensor> decoded;
  std::vector<std::string> decoded_names;
  ASSERT_TRUE(DecodeInfer(body, &decoded, &decoded_names).ok());
  EXPECT_EQ(decoded_names, names);
  ASSERT_EQ(decoded.size(), 2u);
  EXPECT_EQ(decoded[0].name(), "x");
  EXPECT_EQ(decoded[0].datatype(), DataType::kFp32);
  EXPECT_EQ(decoded[0].shape(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(decoded[0].bytes(), inputs[0].bytes());
  EXPECT_EQ(decoded[1].strings(), words.strings());
}

TEST(WorkerFrameTest, ResultAndReadyRoundTrip) {
  std::vector<Tensor> outputs = {Floats("y", {1, 3}, {1, 2, 3}), Tensor("empty", DataType::kInt64, {0})};
  auto frame = EncodeResult(outputs);
  ASSERT_TRUE(frame.ok());
  std::vector<Tensor> decoded;
  ASSERT_TRUE(DecodeResult(Body(*frame), &decoded).ok());
  ASSERT_EQ(decoded.size(), 2u);
  EXPECT_EQ(decoded[0].bytes(), outputs[0].bytes());
  EXPECT_EQ(decoded[1].element_count(), 0);

  ModelSignature sig;
  sig.inputs = {{"x", DataType::kFp64, {-1, 4}}};
  sig.outputs = {{"label", DataType::kInt64, {-1}}, {"name", DataType::kBytes, {-1, 1}}};
  auto ready = EncodeReady(sig);
  ASSERT_TRUE(ready.ok());
  ModelSignature back;
  ASSERT_TRUE(DecodeReady(Body(*ready), &back).ok());
  ASSERT_EQ(back.inputs.size(), 1u);
  EXPECT_EQ(back.inputs[0].shape, (std::vector<int64_t>{-1, 4}));
  ASSERT_EQ(back.outputs.size(), 2u);
  EXPECT_EQ(back.outputs[1].datatype, DataType::kBytes);
}

TEST(WorkerFrameTest, ErrorCarriesItsCode) {
  Status bad = DecodeError(Body(EncodeError(WorkerError::kInvalidArgument, "X has 3 features")));
  EXPECT_EQ(bad.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(bad.message(), "X has 3 features");
  Status internal = DecodeError(Body(EncodeError(WorkerError::kInternal, "boom")));
  EXPECT_EQ(internal.code(), Status::Code::kInternal);
}

TEST(WorkerFrameTest, EveryTruncationIsRefused) {
  std::vector<Tensor> outputs = {Floats("y", {2}, {1, 2})};
  Tensor s("s", DataType::kBytes, {2});
  s.strings() = {"ab", "c"};
  outputs.push_back(s);
  const std::string body = Body(*EncodeResult(outputs));
  for (size_t n = 0; n < body.size(); ++n) {
    std::vector<Tensor> decoded;
    EXPECT_FALSE(DecodeResult(body.substr(0, n), &decoded).ok()) << "prefix of " << n << " bytes";
  }
  std::vector<Tensor> decoded;
  EXPECT_FALSE(DecodeResult(body + "x", &decoded).ok());
}

// Builds a RESULT body by hand: one tensor with the given fields.
std::string HandResult(uint8_t datatype, std::vector<int64_t> shape, uint64_t data_length,
                       const std::string& data, uint32_t count = 1) {
  std::string b(1, static_cast<char>(FrameKind::kResult));
  auto put = [&b](const void* p, size_t n) { b.append(static_cast<const char*>(p), n); };
  put(&count, 4);
  const uint32_t name_length = 1;
  put(&name_length, 4);
  b += "t";
  put(&datatype, 1);
  const uint32_t rank = static_cast<uint32_t>(shape.size());
  put(&rank, 4);
  for (int64_t d : shape) put(&d, 8);
  put(&data_length, 8);
  b += data;
  return b;
}

TEST(WorkerFrameTest, HostileFieldsAreRefusedBeforeAllocating) {
  std::vector<Tensor> out;
  // Data that does not fill the shape.
  EXPECT_FALSE(DecodeResult(HandResult(11, {4}, 8, std::string(8, '\0')), &out).ok());
  // A huge shape with no data: refused, not allocated.
  EXPECT_FALSE(DecodeResult(HandResult(11, {int64_t{1} << 40, int64_t{1} << 20}, 0, ""), &out).ok());
  // A length past the end of the frame.
  EXPECT_FALSE(DecodeResult(HandResult(11, {1}, uint64_t{1} << 62, "abcd"), &out).ok());
  // BYTES claiming more elements than their lengths allow.
  EXPECT_FALSE(DecodeResult(HandResult(13, {int64_t{1} << 40}, 4, std::string(4, '\0')), &out).ok());
  // An element length past the data.
  std::string lying(4, '\0');
  const uint32_t big = 1000;
  std::memcpy(lying.data(), &big, 4);
  EXPECT_FALSE(DecodeResult(HandResult(13, {1}, 4, lying), &out).ok());
  // Unknown datatype codes, a negative dimension, too many tensors.
  EXPECT_FALSE(DecodeResult(HandResult(0, {1}, 0, ""), &out).ok());
  EXPECT_FALSE(DecodeResult(HandResult(14, {1}, 0, ""), &out).ok());
  EXPECT_FALSE(DecodeResult(HandResult(11, {-1}, 0, ""), &out).ok());
  EXPECT_FALSE(DecodeResult(HandResult(11, {-2}, 0, ""), &out).ok());
  EXPECT_FALSE(DecodeResult(HandResult(11, {1}, 4, "abcd", kMaxCount + 1), &out).ok());
  // Sound: accepted.
  EXPECT_TRUE(DecodeResult(HandResult(11, {1}, 4, "abcd"), &out).ok());
}

TEST(WorkerFrameTest, KindsAreChecked) {
  EXPECT_FALSE(KindOf("").ok());
  EXPECT_FALSE(KindOf(std::string(1, '\x09')).ok());
  std::vector<Tensor> out;
  EXPECT_FALSE(DecodeResult(Body(EncodeError(WorkerError::kInternal, "x")), &out).ok());
  ModelSignature sig;
  EXPECT_FALSE(DecodeReady(Body(*EncodeResult({})), &sig).ok());
}

}  // namespace
}  // namespace berth::python
