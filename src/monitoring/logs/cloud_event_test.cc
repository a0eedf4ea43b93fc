#include "monitoring/logs/cloud_event.h"

#include <gtest/gtest.h>

#include <cstring>

namespace berth::logs {
namespace {

Tensor Fp32(std::string name, std::vector<float> values) {
  Tensor t(std::move(name), DataType::kFp32, {1, static_cast<int64_t>(values.size())});
  t.bytes().resize(values.size() * sizeof(float));
  std::memcpy(t.bytes().data(), values.data(), t.bytes().size());
  return t;
}

TEST(CloudEventTest, TensorsAsV2Json) {
  Tensor words("words", DataType::kBytes, {2});
  words.strings() = {"caf\xc3\xa9", std::string("a\xff\"b", 4)};
  Tensor flags("flags", DataType::kBool, {2});
  flags.bytes() = {std::byte{1}, std::byte{0}};
  EXPECT_EQ(TensorsJson({Fp32("x", {1.5f, -0.25f}), words, flags}, {}),
            R"([{"name":"x","datatype":"FP32","shape":[1,2],"data":[1.5,-0.25]},)"
            R"({"name":"words","datatype":"BYTES","shape":[2],"data":["café","a?\"b"]},)"
            R"({"name":"flags","datatype":"BOOL","shape":[2],"data":[true,false]}])");
}

TEST(CloudEventTest, RedactedTensorsKeepTheirShapeButNotTheirData) {
  const std::string json = TensorsJson({Fp32("secret", {42.0f}), Fp32("x", {1.0f})}, {"secret"});
  EXPECT_EQ(json, R"([{"name":"secret","datatype":"FP32","shape":[1,1],"data":"[redacted]"},)"
                  R"({"name":"x","datatype":"FP32","shape":[1,1],"data":[1]}])");
}

TEST(CloudEventTest, NonFiniteFloatsAreNull) {
  EXPECT_EQ(TensorsJson({Fp32("x", {std::numeric_limits<float>::infinity()})}, {}),
            R"([{"name":"x","datatype":"FP32","shape":[1,1],"data":[null]}])");
}

TEST(CloudEventTest, StructuredAndBinaryModesCarryTheSameAttributes) {
  PayloadEvent e{.id = "req-1",
                 .type = kRequestEventType,
                 .model = "iris",
                 .version = "2",
                 .protocol = Protocol::kGrpc,
                 .time = std::chrono::system_clock::time_point(std::chrono::seconds(1764617400)),
                 .data = R"({"inputs":[]})"};
  EXPECT_EQ(StructuredEvent(e),
            R"({"specversion":"1.0","id":"req-1","source":"/v2/models/iris/versions/2",)"
            R"("type":"org.kubeflow.serving.inference.request","time":"2025-12-01T19:30:00.000Z",)"
            R"("datacontenttype":"application/json","inferenceservicename":"iris",)"
            R"("component":"predictor","endpoint":"2","protocol":"grpc","data":{"inputs":[]}})");
  auto headers = BinaryHeaders(e);
  auto find = [&](const std::string& name) {
    for (auto& [n, v] : headers) {
      if (n == name) return v;
    }
    return std::string("<missing>");
  };
  EXPECT_EQ(find("ce-specversion"), "1.0");
  EXPECT_EQ(find("ce-id"), "req-1");
  EXPECT_EQ(find("ce-type"), "org.kubeflow.serving.inference.request");
  EXPECT_EQ(find("ce-source"), "/v2/models/iris/versions/2");
  EXPECT_EQ(find("ce-time"), "2025-12-01T19:30:00.000Z");
}

TEST(CloudEventTest, AnIdWithLineBreaksCannotSplitAHeader) {
  PayloadEvent e;
  e.id = "a\r\nX-Evil: 1";
  e.type = kResponseEventType;
  e.model = "m";
  e.version = "1";
  for (auto& [name, value] : BinaryHeaders(e)) {
    EXPECT_EQ(value.find_first_of("\r\n"), std::string::npos) << name;
  }
}

}  // namespace
}  // namespace berth::logs
