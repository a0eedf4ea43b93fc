#include "server/grpc/grpc_codec.h"
#include "core/tensor_testing.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace berth::rpc {
namespace {

using ::berth::testing::TensorValues;
using inference::ModelInferRequest;
using inference::ModelInferResponse;

template <typename T>
std::string RawOf(const std::vector<T>& values) {
  std::string out(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

// A 4-byte little-endian length, then the bytes.
std::string Framed(const std::string& s) {
  const uint32_t n = static_cast<uint32_t>(s.size());
  return std::string(reinterpret_cast<const char*>(&n), 4) + s;
}

ModelInferRequest::InferInputTensor* AddInput(ModelInferRequest* r, const std::string& name,
                                              const std::string& datatype,
                                              std::vector<int64_t> shape) {
  auto* in = r->add_inputs();
  in->set_name(name);
  in->set_datatype(datatype);
  for (int64_t d : shape) in->add_shape(d);
  return in;
}

ModelInferRequest Request() {
  ModelInferRequest r;
  r.set_model_name("iris");
  return r;
}

void ExpectInvalid(const ModelInferRequest& r, const std::string& fragment) {
  auto decoded = DecodeInferRequest(r);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(decoded.status().message().find(fragment), std::string::npos)
      << decoded.status().message();
}

TEST(GrpcCodecTest, DecodesRawFixedSizeInputs) {
  ModelInferRequest r = Request();
  r.set_model_version("2");
  r.set_id("req-7");
  r.mutable_parameters()->operator[]("priority").set_uint64_param(3);
  r.mutable_parameters()->operator[]("tag").set_string_param("x");
  AddInput(&r, "X", "FP32", {2, 2});
  AddInput(&r, "ids", "INT64", {2});
  r.add_raw_input_contents(RawOf<float>({1.5f, -2.0f, 3.25f, 0.0f}));
  r.add_raw_input_contents(RawOf<int64_t>({-1, 1LL << 40}));
  r.add_outputs()->set_name("label");

  auto decoded = DecodeInferRequest(r);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  const InferenceRequest& req = **decoded;
  EXPECT_EQ(req.model_name, "iris");
  EXPECT_EQ(req.model_version, "2");
  EXPECT_EQ(req.id, "req-7");
  EXPECT_EQ(std::get<int64_t>(req.parameters.at("priority")), 3);
  EXPECT_EQ(std::get<std::string>(req.parameters.at("tag")), "x");
  ASSERT_EQ(req.inputs.size(), 2u);
  EXPECT_EQ(req.inputs[0].datatype(), DataType::kFp32);
  EXPECT_EQ(req.inputs[0].shape(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(TensorValues<float>(req.inputs[0]), (std::vector<float>{1.5f, -2.0f, 3.25f, 0.0f}));
  EXPECT_EQ(TensorValues<int64_t>(req.inputs[1]), (std::vector<int64_t>{-1, 1LL << 40}));
  ASSERT_EQ(req.outputs.size(), 1u);
  EXPECT_EQ(req.outputs[0].name, "label");
}

TEST(GrpcCodecTest, DecodesTypedInputs) {
  ModelInferRequest r = Request();
  auto* x = AddInput(&r, "X", "FP32", {1, 3});
  for (float v : {0.5f, 1.0f, -7.0f}) x->mutable_contents()->add_fp32_contents(v);
  auto* s = AddInput(&r, "sex", "BYTES", {2, 1});
  s->mutable_contents()->add_bytes_contents("sex_1");
  s->mutable_contents()->add_bytes_contents(std::string("a\0b", 3));
  auto* b = AddInput(&r, "flag", "BOOL", {2});
  b->mutable_contents()->add_bool_contents(true);
  b->mutable_contents()->add_bool_contents(false);
  auto* i8 = AddInput(&r, "small", "INT8", {2});
  i8->mutable_contents()->add_int_contents(-128);
  i8->mutable_contents()->add_int_contents(127);
  auto* u16 = AddInput(&r, "u", "UINT16", {1});
  u16->mutable_contents()->add_uint_contents(65535);

  auto decoded = DecodeInferRequest(r);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  const auto& in = (*decoded)->inputs;
  ASSERT_EQ(in.size(), 5u);
  EXPECT_EQ(TensorValues<float>(in[0]), (std::vector<float>{0.5f, 1.0f, -7.0f}));
  EXPECT_EQ(in[1].strings(), (std::vector<std::string>{"sex_1", std::string("a\0b", 3)}));
  EXPECT_EQ(TensorValues<uint8_t>(in[2]), (std::vector<uint8_t>{1, 0}));
  EXPECT_EQ(TensorValues<int8_t>(in[3]), (std::vector<int8_t>{-128, 127}));
  EXPECT_EQ(TensorValues<uint16_t>(in[4]), (std::vector<uint16_t>{65535}));
}

TEST(GrpcCodecTest, DecodesRawBytesInput) {
  ModelInferRequest r = Request();
  AddInput(&r, "sex", "BYTES", {3});
  r.add_raw_input_contents(Framed("sex_2") + Framed("") + Framed(std::string("\0\xff", 2)));
  auto decoded = DecodeInferRequest(r);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ((*decoded)->inputs[0].strings(),
            (std::vector<std::string>{"sex_2", "", std::string("\0\xff", 2)}));
}

TEST(GrpcCodecTest, RefusesRawContentsOfTheWrongSize) {
  ModelInferRequest r = Request();
  AddInput(&r, "X", "FP32", {2, 2});
  r.add_raw_input_contents(RawOf<float>({1, 2, 3}));
  ExpectInvalid(r, "input 'X': shape [2, 2] of FP32 needs 16 bytes of binary data, got 12");

  ModelInferRequest odd = Request();
  AddInput(&odd, "X", "FP32", {1});
  odd.add_raw_input_contents("\x01\x02\x03\x04\x05");
  ExpectInvalid(odd, "needs 4 bytes of binary data, got 5");
}

TEST(GrpcCodecTest, RefusesHugeShapeWithoutAllocating) {
  ModelInferRequest r = Request();
  AddInput(&r, "X", "FP32", {1LL << 20, 1LL << 20});
  r.add_raw_input_contents(RawOf<float>({1}));
  ExpectInvalid(r, "of FP32 needs 4398046511104 bytes of binary data, got 4");

  ModelInferRequest typed = Request();
  AddInput(&typed, "X", "FP32", {1LL << 20, 1LL << 20})->mutable_contents()->add_fp32_contents(1);
  ExpectInvalid(typed, "has 1 elements in contents.fp32_contents");

  ModelInferRequest overflow = Request();
  AddInput(&overflow, "X", "FP32", {1LL << 40, 1LL << 40});
  overflow.add_raw_input_contents("");
  ExpectInvalid(overflow, "too large");
}

TEST(GrpcCodecTest, RefusesRawCountThatDoesNotMatchInputs) {
  ModelInferRequest r = Request();
  AddInput(&r, "a", "FP32", {1});
  AddInput(&r, "b", "FP32", {1});
  r.add_raw_input_contents(RawOf<float>({1}));
  ExpectInvalid(r, "raw_input_contents has 1 entries but the request has 2 inputs");
}

TEST(GrpcCodecTest, RefusesRawMixedWithTyped) {
  ModelInferRequest r = Request();
  AddInput(&r, "a", "FP32", {1});
  AddInput(&r, "b", "FP32", {1})->mutable_contents()->add_fp32_contents(1);
  r.add_raw_input_contents(RawOf<float>({1}));
  r.add_raw_input_contents(RawOf<float>({2}));
  ExpectInvalid(r, "input 'b' has typed contents but the request uses raw_input_contents");
}

TEST(GrpcCodecTest, RefusesTypedContentsInTheWrongFieldOrCount) {
  ModelInferRequest wrong_field = Request();
  AddInput(&wrong_field, "X", "FP32", {1})->mutable_contents()->add_fp64_contents(1.0);
  ExpectInvalid(wrong_field, "is FP32 but has data in contents.fp64_contents");

  ModelInferRequest wrong_count = Request();
  auto* in = AddInput(&wrong_count, "X", "INT64", {3});
  in->mutable_contents()->add_int64_contents(1);
  in->mutable_contents()->add_int64_contents(2);
  ExpectInvalid(wrong_count, "has 2 elements in contents.int64_contents but shape [3] needs 3");

  ModelInferRequest missing = Request();
  AddInput(&missing, "X", "FP32", {2});
  ExpectInvalid(missing, "has 0 elements in contents.fp32_contents");
}

TEST(GrpcCodecTest, RefusesTypedValuesOutOfRange) {
  ModelInferRequest r = Request();
  AddInput(&r, "X", "INT8", {1})->mutable_contents()->add_int_contents(128);
  ExpectInvalid(r, "holds 128 at flat index 0, out of range for INT8");

  ModelInferRequest u = Request();
  AddInput(&u, "X", "UINT8", {1})->mutable_contents()->add_uint_contents(256);
  ExpectInvalid(u, "out of range for UINT8");
}

TEST(GrpcCodecTest, Fp16TravelsOnlyRaw) {
  ModelInferRequest typed = Request();
  AddInput(&typed, "h", "FP16", {1})->mutable_contents()->add_fp32_contents(1);
  ExpectInvalid(typed, "send it in raw_input_contents");

  ModelInferRequest raw = Request();
  AddInput(&raw, "h", "FP16", {2});
  raw.add_raw_input_contents(RawOf<uint16_t>({0x3c00, 0xc000}));
  auto decoded = DecodeInferRequest(raw);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(TensorValues<uint16_t>((*decoded)->inputs[0]), (std::vector<uint16_t>{0x3c00, 0xc000}));
}

TEST(GrpcCodecTest, RefusesRawBoolOtherThanZeroOrOne) {
  ModelInferRequest r = Request();
  AddInput(&r, "flag", "BOOL", {2});
  r.add_raw_input_contents(std::string("\x01\x02", 2));
  ExpectInvalid(r, "holds byte 2 at flat index 1");
}

TEST(GrpcCodecTest, RefusesMalformedHeaders) {
  ModelInferRequest no_model;
  AddInput(&no_model, "X", "FP32", {0});
  ExpectInvalid(no_model, "model_name is required");

  ModelInferRequest bad_type = Request();
  AddInput(&bad_type, "X", "FLOAT", {1});
  ExpectInvalid(bad_type, "unknown datatype 'FLOAT'");

  ModelInferRequest negative = Request();
  AddInput(&negative, "X", "FP32", {-1, 4});
  ExpectInvalid(negative, "negative dimension in shape [-1, 4]");

  ModelInferRequest unnamed = Request();
  AddInput(&unnamed, "", "FP32", {0});
  ExpectInvalid(unnamed, "inputs[0] needs a name");

  ModelInferRequest big = Request();
  (*big.mutable_parameters())["p"].set_uint64_param(~0ull);
  ExpectInvalid(big, "parameter 'p' in 'parameters' is larger than the largest int64");

  ModelInferRequest unset = Request();
  (*unset.mutable_parameters())["p"];
  ExpectInvalid(unset, "parameter 'p' in 'parameters' has no value");
}

// The REST reader's check, with its wording (CheckKnownParameter).
TEST(GrpcCodecTest, RefusesKnownParametersOfTheWrongType) {
  ModelInferRequest output = Request();
  AddInput(&output, "X", "FP32", {1})->mutable_contents()->add_fp32_contents(1);
  output.add_outputs()->set_name("y");
  (*output.mutable_outputs(0)->mutable_parameters())["binary_data"].set_string_param("yes");
  ExpectInvalid(output,
                "parameter 'binary_data' in 'outputs[0].parameters' must be a boolean (true or "
                "false)");

  ModelInferRequest request = Request();
  AddInput(&request, "X", "FP32", {1})->mutable_contents()->add_fp32_contents(1);
  (*request.mutable_parameters())["classification"].set_int64_param(-1);
  ExpectInvalid(request,
                "parameter 'classification' in 'parameters' must be a non-negative integer");
}

// An input in shared memory has no raw_input_contents entry (tritonclient
// sends none): the entries go to the other inputs in order.
TEST(GrpcCodecTest, SharedMemoryInputsTakeNoRawEntry) {
  ModelInferRequest r = Request();
  auto* in = AddInput(&r, "X", "FP32", {1});
  (*in->mutable_parameters())["shared_memory_region"].set_string_param("r0");
  (*in->mutable_parameters())["shared_memory_byte_size"].set_int64_param(4);
  AddInput(&r, "Y", "FP32", {1});
  const float y = 2.5f;
  r.add_raw_input_contents(std::string(reinterpret_cast<const char*>(&y), sizeof(y)));
  auto decoded = DecodeInferRequest(r);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_EQ((*decoded)->inputs.size(), 2u);
  EXPECT_TRUE((*decoded)->inputs[0].bytes().empty());
  EXPECT_EQ((*decoded)->shared_memory_inputs.at("X").region, "r0");
  EXPECT_EQ((*decoded)->shared_memory_inputs.at("X").byte_size, 4u);
  EXPECT_EQ(*(*decoded)->inputs[1].data<float>(), 2.5f);

  (*in->mutable_parameters())["shared_memory_byte_size"].set_string_param("4");
  ExpectInvalid(r, "parameter 'shared_memory_byte_size' of input 'X' must be a non-negative "
                   "integer");
  r.add_raw_input_contents("abcd");
  ExpectInvalid(r, "raw_input_contents has 2 entries but the request has 1 inputs not in shared "
                   "memory; it needs one entry per such input");
}

// The framing is core/raw_tensor's, shared with the REST binary extension:
// the same bytes get the same answer at both doors.
TEST(GrpcCodecTest, RawBytesFramingIsTheCores) {
  auto decode = [](int64_t count, const std::string& raw) {
    ModelInferRequest r = Request();
    AddInput(&r, "s", "BYTES", {count});
    r.add_raw_input_contents(raw);
    return DecodeInferRequest(r);
  };
  const std::string one = Framed("abc");
  auto ok = decode(2, one + Framed(""));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ((*ok)->inputs[0].strings(), (std::vector<std::string>{"abc", ""}));
  auto empty = decode(0, "");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE((*empty)->inputs[0].strings().empty());

  struct Bad {
    int64_t count;
    std::string raw;
    std::string message;
  };
  const Bad bad[] = {
      {1, one.substr(0, 6), "input 's': BYTES element 0 declares 3 bytes but only 2 remain"},
      {1, std::string("\xff\xff\xff\xff", 4) + "x",
       "input 's': BYTES element 0 declares 4294967295 bytes but only 1 remain"},
      {2, one + std::string("\x01\x00", 2),
       "input 's': binary BYTES data ends before element 1 of 2"},
      {2, one, "input 's': 7 bytes of binary data cannot hold 2 BYTES elements"},
      {1, one + one, "input 's': 7 bytes of binary data left after the last BYTES element"},
      {4, one, "input 's': 7 bytes of binary data cannot hold 4 BYTES elements"},
  };
  for (const Bad& b : bad) {
    auto decoded = decode(b.count, b.raw);
    ASSERT_FALSE(decoded.ok()) << b.message;
    EXPECT_EQ(decoded.status().code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(decoded.status().message(), b.message);
  }
}

TEST(GrpcCodecTest, EncodesRawBytesAsTheyDecode) {
  InferenceResponse response;
  Tensor t("label", DataType::kBytes, {3});
  t.strings() = {"high", "", std::string("\0z", 2)};
  response.outputs.push_back(t);
  ModelInferResponse out;
  EncodeInferResponse(response, &out);
  ASSERT_EQ(out.raw_output_contents_size(), 1);
  EXPECT_EQ(out.raw_output_contents(0),
            Framed("high") + Framed("") + Framed(std::string("\0z", 2)));

  ModelInferRequest r = Request();
  AddInput(&r, "label", "BYTES", {3});
  r.add_raw_input_contents(out.raw_output_contents(0));
  auto back = DecodeInferRequest(r);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ((*back)->inputs[0].strings(), t.strings());
}

// Not a fuzzer (no coverage guidance), but the same contract: whatever bytes
// arrive, decoding either succeeds with a consistent request or fails with a
// Status, and never reads out of bounds (run under BERTH_SANITIZE to check).
TEST(GrpcCodecTest, SurvivesCorruptedMessages) {
  ModelInferRequest valid = Request();
  AddInput(&valid, "X", "FP32", {2, 2});
  AddInput(&valid, "sex", "BYTES", {2});
  AddInput(&valid, "n", "INT8", {1});
  valid.add_raw_input_contents(RawOf<float>({1, 2, 3, 4}));
  valid.add_raw_input_contents(Framed("a") + Framed("bc"));
  valid.add_raw_input_contents(std::string("\x05", 1));
  const std::string wire = valid.SerializeAsString();
  std::mt19937 rng(1234);
  int decoded_ok = 0;
  for (int i = 0; i < 5000; ++i) {
    std::string corrupt = wire;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) corrupt[rng() % corrupt.size()] = static_cast<char>(rng());
    ModelInferRequest parsed;
    if (!parsed.ParseFromString(corrupt)) continue;
    auto decoded = DecodeInferRequest(parsed);
    if (!decoded.ok()) {
      EXPECT_FALSE(decoded.status().message().empty());
      continue;
    }
    ++decoded_ok;
    for (const Tensor& t : (*decoded)->inputs) EXPECT_TRUE(t.CheckConsistent().ok()) << t.name();
  }
  EXPECT_GT(decoded_ok, 0);
}

InferenceResponse SampleResponse() {
  InferenceResponse r;
  r.model_name = "iris";
  r.model_version = "1";
  r.id = "req-1";
  r.parameters["batch"] = int64_t{2};
  Tensor probs("probabilities", DataType::kFp32, {2, 1});
  EXPECT_TRUE(probs.Allocate().ok());
  probs.data<float>()[0] = 0.25f;
  probs.data<float>()[1] = 0.75f;
  Tensor label("label", DataType::kBytes, {2});
  label.strings() = {"low", "high"};
  Tensor ids("ids", DataType::kInt64, {1});
  EXPECT_TRUE(ids.Allocate().ok());
  ids.data<int64_t>()[0] = 42;
  r.outputs.push_back(std::move(probs));
  r.outputs.push_back(std::move(label));
  r.outputs.push_back(std::move(ids));
  return r;
}

TEST(GrpcCodecTest, EncodesRawResponse) {
  ModelInferResponse out;
  EncodeInferResponse(SampleResponse(), &out);
  EXPECT_EQ(out.model_name(), "iris");
  EXPECT_EQ(out.model_version(), "1");
  EXPECT_EQ(out.id(), "req-1");
  EXPECT_EQ(out.parameters().at("batch").int64_param(), 2);
  ASSERT_EQ(out.outputs_size(), 3);
  EXPECT_EQ(out.outputs(0).name(), "probabilities");
  EXPECT_EQ(out.outputs(0).datatype(), "FP32");
  EXPECT_EQ(std::vector<int64_t>(out.outputs(0).shape().begin(), out.outputs(0).shape().end()),
            (std::vector<int64_t>{2, 1}));
  EXPECT_FALSE(out.outputs(0).has_contents());
  ASSERT_EQ(out.raw_output_contents_size(), 3);
  EXPECT_EQ(out.raw_output_contents(0), RawOf<float>({0.25f, 0.75f}));
  EXPECT_EQ(out.raw_output_contents(1), Framed("low") + Framed("high"));
  EXPECT_EQ(out.raw_output_contents(2), RawOf<int64_t>({42}));
}

TEST(GrpcCodecTest, Fp16OutputIsRawLikeTheRest) {
  InferenceResponse r = SampleResponse();
  Tensor half("half", DataType::kFp16, {1});
  ASSERT_TRUE(half.Allocate().ok());
  half.data<uint16_t>()[0] = 0x3c00;
  r.outputs.push_back(std::move(half));
  ModelInferResponse out;
  EncodeInferResponse(r, &out);
  ASSERT_EQ(out.raw_output_contents_size(), 4);
  EXPECT_EQ(out.raw_output_contents(3), RawOf<uint16_t>({0x3c00}));
  for (const auto& o : out.outputs()) EXPECT_FALSE(o.has_contents());
}

TEST(GrpcCodecTest, EncodesRepositoryIndex) {
  const std::vector<IndexEntry> index = {
      {"iris", "1", ModelState::kReady, ""},
      {"broken", "", ModelState::kUnavailable, "bad config"},
  };
  inference::RepositoryIndexResponse out;
  EncodeRepositoryIndex(index, &out);
  ASSERT_EQ(out.models_size(), 2);
  EXPECT_EQ(out.models(0).name(), "iris");
  EXPECT_EQ(out.models(0).version(), "1");
  EXPECT_EQ(out.models(0).state(), "READY");
  EXPECT_EQ(out.models(1).name(), "broken");
  EXPECT_EQ(out.models(1).version(), "");
  EXPECT_EQ(out.models(1).state(), "UNAVAILABLE");
  EXPECT_EQ(out.models(1).reason(), "bad config");
}

TEST(GrpcCodecTest, EncodesModelStatistics) {
  ModelStatistics s;
  s.name = "iris";
  s.version = "2";
  s.last_inference_ms = 1700000000123;
  s.inference_count = 7;
  s.execution_count = 3;
  s.success = {5, 500};
  s.fail = {1, 7};
  s.queue = {5, 40};
  s.compute_infer = {5, 20};
  s.batch_stats = {{5, {1, 1}, {1, 2}, {1, 3}}};
  inference::ModelStatisticsResponse out;
  EncodeModelStatistics({s}, &out);
  ASSERT_EQ(out.model_stats_size(), 1);
  const auto& m = out.model_stats(0);
  EXPECT_EQ(m.name(), "iris");
  EXPECT_EQ(m.version(), "2");
  EXPECT_EQ(m.last_inference(), 1700000000123u);
  EXPECT_EQ(m.inference_count(), 7u);
  EXPECT_EQ(m.execution_count(), 3u);
  EXPECT_EQ(m.inference_stats().success().count(), 5u);
  EXPECT_EQ(m.inference_stats().success().ns(), 500u);
  EXPECT_EQ(m.inference_stats().fail().ns(), 7u);
  EXPECT_EQ(m.inference_stats().queue().ns(), 40u);
  EXPECT_EQ(m.inference_stats().compute_infer().ns(), 20u);
  EXPECT_TRUE(m.inference_stats().has_cache_hit());
  ASSERT_EQ(m.batch_stats_size(), 1);
  EXPECT_EQ(m.batch_stats(0).batch_size(), 5u);
  EXPECT_EQ(m.batch_stats(0).compute_output().ns(), 3u);
}

}  // namespace
}  // namespace berth::rpc
