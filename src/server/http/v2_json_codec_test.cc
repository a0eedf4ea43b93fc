#include "server/http/v2_json_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <rapidjson/document.h>

#include <cstring>
#include <limits>
#include <utility>
#include <string>
#include <vector>

#include "core/scheduler.h"  // Model owns a unique_ptr<Scheduler>
#include "server/http/json_tensor.h"

namespace berth::http {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string ParseError(const std::string& body, const std::string& binary = "") {
  auto r = ParseV2InferRequest(body, binary);
  if (r.ok()) return "<parsed without error>";
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << r.status().ToString();
  return r.status().message();
}

// {"inputs": [<input>]}
std::string OneInput(const std::string& input) { return R"({"inputs": [)" + input + "]}"; }

TEST(ParseV2InferRequestTest, FullRequest) {
  auto r = ParseV2InferRequest(R"({
    "id": "req-1",
    "parameters": {"flag": true, "count": 3, "ratio": 0.5, "tag": "x"},
    "inputs": [
      {"name": "a", "datatype": "FP32", "shape": [2, 2], "data": [[1.5, 2], [3, 4]]},
      {"name": "s", "datatype": "BYTES", "shape": [1], "data": ["hi"],
       "parameters": {"content_type": "str"}}
    ],
    "outputs": [{"name": "y", "parameters": {"binary_data": false}}, {"name": "z"}]
  })");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const InferenceRequest& req = **r;
  EXPECT_EQ(req.id, "req-1");
  EXPECT_EQ(req.model_name, "");  // comes from the URL
  ASSERT_EQ(req.parameters.size(), 4u);
  EXPECT_EQ(std::get<bool>(req.parameters.at("flag")), true);
  EXPECT_EQ(std::get<int64_t>(req.parameters.at("count")), 3);
  EXPECT_EQ(std::get<double>(req.parameters.at("ratio")), 0.5);
  EXPECT_EQ(std::get<std::string>(req.parameters.at("tag")), "x");
  ASSERT_EQ(req.inputs.size(), 2u);
  const Tensor& a = req.inputs[0];
  EXPECT_EQ(a.name(), "a");
  EXPECT_EQ(a.datatype(), DataType::kFp32);
  EXPECT_EQ(a.shape(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(a.data<float>()[0], 1.5f);
  EXPECT_EQ(a.data<float>()[3], 4.0f);
  EXPECT_EQ(req.inputs[1].strings(), std::vector<std::string>{"hi"});
  ASSERT_EQ(req.outputs.size(), 2u);
  EXPECT_EQ(req.outputs[0].name, "y");
  EXPECT_EQ(std::get<bool>(req.outputs[0].parameters.at("binary_data")), false);
  EXPECT_EQ(req.outputs[1].name, "z");
  EXPECT_TRUE(req.outputs[1].parameters.empty());
}

TEST(ParseV2InferRequestTest, MinimalRequest) {
  auto r = ParseV2InferRequest(R"({"inputs": []})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->id, "");
  EXPECT_TRUE((*r)->inputs.empty());
  EXPECT_TRUE((*r)->outputs.empty());
  EXPECT_TRUE((*r)->parameters.empty());
}

TEST(ParseV2InferRequestTest, MalformedJsonGivesTheOffset) {
  EXPECT_EQ(ParseError(R"({"inputs": [}])"),
            "malformed JSON at offset 12: Invalid value.");
  EXPECT_EQ(ParseError(R"({"inputs" [])"),
            "malformed JSON at offset 10: Missing a colon after a name of object member.");
  EXPECT_EQ(ParseError(""), "malformed JSON at offset 0: The document is empty.");
  EXPECT_EQ(ParseError(R"({"inputs": []} extra)"),
            "malformed JSON at offset 15: The document root must not be followed by other "
            "values.");
}

TEST(ParseV2InferRequestTest, BodyShape) {
  EXPECT_EQ(ParseError("[]"), "the request body must be a JSON object");
  EXPECT_EQ(ParseError("42"), "the request body must be a JSON object");
  EXPECT_EQ(ParseError("{}"), "the request needs an 'inputs' array");
  EXPECT_EQ(ParseError(R"({"inputs": {}})"), "the request needs an 'inputs' array");
  EXPECT_EQ(ParseError(R"({"id": 5, "inputs": []})"), "'id' in the request must be a string");
  EXPECT_EQ(ParseError(R"({"inputs": [], "parameters": []})"), "'parameters' must be an object");
  EXPECT_EQ(ParseError(R"({"inputs": [], "parameters": {"p": [1]}})"),
            "parameter 'p' in 'parameters' must be a boolean, number or string");
  EXPECT_EQ(ParseError(R"({"inputs": [], "parameters": {"p": null}})"),
            "parameter 'p' in 'parameters' must be a boolean, number or string");
}

TEST(ParseV2InferRequestTest, MissingInputFields) {
  EXPECT_EQ(ParseError(R"({"inputs": [7]})"), "inputs[0] must be an object");
  EXPECT_EQ(ParseError(OneInput(R"({"datatype": "FP32", "shape": [1], "data": [1]})")),
            "inputs[0] needs a 'name'");
  EXPECT_EQ(ParseError(OneInput(R"({"name": 1, "datatype": "FP32", "shape": [1], "data": [1]})")),
            "'name' in inputs[0] must be a string");
  EXPECT_EQ(ParseError(OneInput(R"({"name": "a", "shape": [1], "data": [1]})")),
            "inputs[0] ('a') needs a 'datatype'");
  EXPECT_EQ(ParseError(OneInput(R"({"name": "a", "datatype": "FP32", "data": [1]})")),
            "input 'a' needs a 'shape'");
  EXPECT_EQ(ParseError(OneInput(R"({"name": "a", "datatype": "FP32", "shape": [1]})")),
            "input 'a' needs 'data'");
  EXPECT_EQ(ParseError(R"({"inputs": [{"name": "a", "datatype": "FP32", "shape": [1],
                                        "data": [1]}, {"name": "b"}]})"),
            "inputs[1] ('b') needs a 'datatype'");
}

TEST(ParseV2InferRequestTest, BadDatatypeOrShape) {
  EXPECT_EQ(ParseError(OneInput(R"({"name": "a", "datatype": "FLOAT32", "shape": [1],
                                    "data": [1]})")),
            "input 'a' has unknown datatype 'FLOAT32'");
  EXPECT_EQ(ParseError(OneInput(R"({"name": "a", "datatype": "fp32", "shape": [1],
                                    "data": [1]})")),
            "input 'a' has unknown datatype 'fp32'");
  EXPECT_EQ(ParseError(OneInput(R"({"name": "a", "datatype": "FP32", "shape": 1,
                                    "data": [1]})")),
            "'shape' in input 'a' must be an array");
  EXPECT_EQ(ParseError(OneInput(R"({"name": "a", "datatype": "FP32", "shape": [-1],
                                    "data": [1]})")),
            "input 'a' has a negative dimension in shape [-1]");
  EXPECT_EQ(ParseError(OneInput(R"({"name": "a", "datatype": "FP32", "shape": [1.0],
                                    "data": [1]})")),
            "'shape' in input 'a' must hold non-negative integers");
  EXPECT_EQ(ParseError(OneInput(R"({"name": "a", "datatype": "FP32",
                                    "shape": [4294967296, 4294967296], "data": []})")),
            "input 'a' has a shape too large: [4294967296, 4294967296]");
}

// An input in shared memory has no data: the decoder names it in
// shared_memory_inputs for the core, whichever member of the input comes
// first; malformed parameters get the core's message (SharedMemoryRefOf).
TEST(ParseV2InferRequestTest, SharedMemoryInputs) {
  for (const char* input :
       {R"({"name": "a", "datatype": "FP32", "shape": [1],
            "parameters": {"shared_memory_region": "r0", "shared_memory_byte_size": 4,
                           "shared_memory_offset": 8}})",
        R"({"parameters": {"shared_memory_byte_size": 4, "shared_memory_region": "r0",
                           "shared_memory_offset": 8}, "datatype": "FP32", "shape": [1],
            "name": "a"})"}) {
    auto r = ParseV2InferRequest(OneInput(input));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ((*r)->inputs.size(), 1u);
    EXPECT_TRUE((*r)->inputs[0].bytes().empty());
    ASSERT_EQ((*r)->shared_memory_inputs.count("a"), 1u);
    const SharedMemoryRef& ref = (*r)->shared_memory_inputs.at("a");
    EXPECT_EQ(ref.region, "r0");
    EXPECT_EQ(ref.byte_size, 4u);
    EXPECT_EQ(ref.offset, 8u);
  }
  EXPECT_EQ(ParseError(OneInput(R"({"name": "a", "datatype": "FP32", "shape": [1],
                                    "parameters": {"shared_memory_region": "r0"}})")),
            "input 'a' uses shared memory region 'r0' without 'shared_memory_byte_size'");
  EXPECT_EQ(ParseError(OneInput(R"({"name": "a", "datatype": "FP32", "shape": [1],
                                    "parameters": {"shared_memory_region": ["r0"],
                                                   "shared_memory_byte_size": 4}})")),
            "input 'a' uses shared memory: parameter 'shared_memory_region' must name a "
            "registered region");
  EXPECT_EQ(ParseError(OneInput(R"({"name": "a", "datatype": "FP32", "shape": [1],
                                    "parameters": {"shared_memory_region": "r0",
                                                   "shared_memory_byte_size": -4}})")),
            "parameter 'shared_memory_byte_size' of input 'a' must be a non-negative integer");
  EXPECT_EQ(ParseError(OneInput(R"({"name": "a", "datatype": "FP32", "shape": [1], "data": [1],
                                    "parameters": {"shared_memory_region": "r0",
                                                   "shared_memory_byte_size": 4}})")),
            "input 'a' has both data and shared_memory_region; send one or the other");
}

TEST(ParseV2InferRequestTest, DataErrorsNameTheInput) {
  EXPECT_EQ(ParseError(OneInput(R"({"name": "a", "datatype": "INT8", "shape": [2],
                                    "data": [1, 300]})")),
            "input 'a': element 1 (300) is out of range for INT8");
  EXPECT_EQ(ParseError(OneInput(R"({"name": "a", "datatype": "FP32", "shape": [3],
                                    "data": [1, 2]})")),
            "input 'a': shape [3] needs 3 elements, but data has 2");
}

TEST(ParseV2InferRequestTest, NanAndInfinityLiteralsParse) {
  auto r = ParseV2InferRequest(OneInput(
      R"({"name": "a", "datatype": "FP64", "shape": [3], "data": [NaN, Infinity, -Infinity]})"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const double* d = (*r)->inputs[0].data<double>();
  EXPECT_TRUE(std::isnan(d[0]));
  EXPECT_TRUE(std::isinf(d[1]) && d[1] > 0);
  EXPECT_TRUE(std::isinf(d[2]) && d[2] < 0);
}

TEST(ParseV2InferRequestTest, DeepNestingDoesNotOverflowTheStack) {
  const std::string deep = std::string(1000000, '[') + "1" + std::string(1000000, ']');
  EXPECT_EQ(ParseError(OneInput(R"({"name": "a", "datatype": "INT32", "shape": [1], "data": )" +
                                deep + "}")),
            "input 'a': data is nested deeper than 64 levels");
  // Deep nesting under a key the parser does not look at is harmless.
  auto r = ParseV2InferRequest(R"({"inputs": [], "x": )" + deep + "}");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(ParseError(R"({"inputs": )" + std::string(1000000, '[')),
              StartsWith("malformed JSON at offset "));
}

TEST(ParseV2InferRequestTest, HugeShapesAreRefusedBeforeAllocating) {
  EXPECT_EQ(ParseError(OneInput(R"({"name": "a", "datatype": "FP64",
                                    "shape": [2305843009213693952], "data": [1.0]})")),
            "input 'a': shape [2305843009213693952] needs 2305843009213693952 elements, but "
            "data has 1");
  EXPECT_EQ(ParseError(OneInput(R"({"name": "a", "datatype": "FP64",
                                    "shape": [2305843009213693952],
                                    "parameters": {"binary_data_size": 8}})"),
                       std::string(8, '\0')),
            "input 'a': shape [2305843009213693952] of FP64 needs 2305843009213693952 x 8 bytes "
            "of binary data, got 8");
  EXPECT_EQ(ParseError(OneInput(R"({"name": "a", "datatype": "BYTES", "shape": [1000000000000],
                                    "parameters": {"binary_data_size": 8}})"),
                       std::string(8, '\0')),
            "input 'a': 8 bytes of binary data cannot hold 1000000000000 BYTES elements");
  EXPECT_EQ(ParseError(OneInput(R"({"name": "a", "datatype": "FP32", "shape": [3],
                                    "parameters": {"binary_data_size": 8}})"),
                       std::string(8, '\0')),
            "input 'a': shape [3] of FP32 needs 12 bytes of binary data, got 8");
}

TEST(ParseV2InferRequestTest, Fp64DataIsReadExactly) {
  // RapidJSON's own conversion reads both of these one ULP off.
  auto r = ParseV2InferRequest(OneInput(R"({"name": "a", "datatype": "FP64", "shape": [2],
      "data": [9.9674483243918787e-241, -1.4251008704872614e+186]})"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->inputs[0].data<double>()[0], 9.9674483243918787e-241);
  EXPECT_EQ((*r)->inputs[0].data<double>()[1], -1.4251008704872614e+186);
}

TEST(ParseV2InferRequestTest, OutputsList) {
  EXPECT_EQ(ParseError(R"({"inputs": [], "outputs": {}})"), "'outputs' must be an array");
  EXPECT_EQ(ParseError(R"({"inputs": [], "outputs": ["y"]})"), "outputs[0] must be an object");
  EXPECT_EQ(ParseError(R"({"inputs": [], "outputs": [{"name": "y"}, {}]})"),
            "outputs[1] needs a 'name'");
  EXPECT_EQ(ParseError(R"({"inputs": [], "outputs": [{"name": "y", "parameters": 1}]})"),
            "'outputs[0].parameters' must be an object");
  auto r = ParseV2InferRequest(R"({"inputs": [], "outputs": []})");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)->outputs.empty());
}

TEST(ParseV2InferRequestTest, BinaryDataSize) {
  const float values[] = {1.5f, -2.0f};
  std::string binary(reinterpret_cast<const char*>(values), sizeof(values));
  const std::string json = OneInput(
      R"({"name": "a", "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": 8}})");
  auto r = ParseV2InferRequest(json, binary);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->inputs[0].data<float>()[1], -2.0f);

  EXPECT_EQ(ParseError(json, binary + "xx"),
            "2 bytes of binary data are not claimed by any input");
  EXPECT_EQ(ParseError(json, "abc"),
            "input 'a': binary_data_size 8 runs past the end of the body (3 bytes left)");
  EXPECT_EQ(ParseError(OneInput(R"({"name": "a", "datatype": "FP32", "shape": [2], "data": [1, 2],
                                    "parameters": {"binary_data_size": 8}})"),
                       binary),
            "input 'a' has both 'data' and binary_data_size");
  EXPECT_EQ(ParseError(OneInput(R"({"name": "a", "datatype": "FP32", "shape": [2],
                                    "parameters": {"binary_data_size": -8}})"),
                       binary),
            "input 'a': binary_data_size must be a non-negative integer");
  // Binary bytes without any input claiming them.
  EXPECT_EQ(ParseError(R"({"inputs": []})", "zz"),
            "2 bytes of binary data are not claimed by any input");
}

TEST(ParseV2InferRequestTest, NestedDataMustFollowTheShape) {
  auto input = [](const std::string& shape, const std::string& data) {
    return OneInput(R"({"name": "a", "datatype": "INT32", "shape": )" + shape +
                    R"(, "data": )" + data + "}");
  };
  const std::string hint = " (send lists nested exactly as the shape, or one flat list)";
  // Ragged rows are not re-flowed into the shape.
  EXPECT_EQ(ParseError(input("[2, 4]", "[[1,2,3],[4,5,6,7,8]]")),
            "input 'a': data does not match shape [2, 4]: data[0] has 3 entries where 4 are "
            "expected" + hint);
  EXPECT_EQ(ParseError(input("[2, 4]", "[[1,2,3,4],[5,6,7]]")),
            "input 'a': data does not match shape [2, 4]: data[1] has 3 entries where 4 are "
            "expected" + hint);
  // Nesting of another shape with the same count.
  EXPECT_EQ(ParseError(input("[2, 2, 2]", "[[1,2,3,4],[5,6,7,8]]")),
            "input 'a': data does not match shape [2, 2, 2]: data[0][0] is a value where a "
            "list of 2 is expected" + hint);
  EXPECT_EQ(ParseError(input("[4, 2]", "[[1,2,3,4],[5,6,7,8]]")),
            "input 'a': data does not match shape [4, 2]: data[0] has 4 entries where 2 are "
            "expected" + hint);
  EXPECT_EQ(ParseError(input("[2, 2]", "[[1,2],3,4]")),
            "input 'a': data does not match shape [2, 2]: data[1] is a value where a list of "
            "2 is expected" + hint);
  EXPECT_EQ(ParseError(input("[4]", "[1,2,[3,4]]")),
            "input 'a': data does not match shape [4]: data[2] is a list inside a flat list" +
                hint);
  EXPECT_EQ(ParseError(input("[2]", "[[1],[2]]")),
            "input 'a': data does not match shape [2]: data[0] is a list where a value is "
            "expected" + hint);
  EXPECT_EQ(ParseError(input("[]", "[[1]]")),
            "input 'a': data does not match shape []: data[0] is a list where a value is "
            "expected" + hint);
  EXPECT_EQ(ParseError(input("[1, 2]", "[[]]")),
            "input 'a': data does not match shape [1, 2]: data[0] has 0 entries where 2 are "
            "expected" + hint);
  // Flat data of the right count, exact nesting, a bare value and empty
  // shapes are all read.
  for (const auto& [shape, data] : std::vector<std::pair<std::string, std::string>>{
           {"[2, 4]", "[1,2,3,4,5,6,7,8]"},
           {"[2, 4]", "[[1,2,3,4],[5,6,7,8]]"},
           {"[2, 2, 2]", "[[[1,2],[3,4]],[[5,6],[7,8]]]"},
           {"[2, 2, 2]", "[1,2,3,4,5,6,7,8]"},
           {"[8, 1]", "[[1],[2],[3],[4],[5],[6],[7],[8]]"},
           {"[]", "7"},
           {"[]", "[7]"},
           {"[1]", "7"},
           {"[0, 4]", "[]"},
           {"[2, 0]", "[[],[]]"},
           {"[2, 0]", "[]"},
       }) {
    auto r = ParseV2InferRequest(input(shape, data));
    EXPECT_TRUE(r.ok()) << shape << " " << data << ": " << r.status().ToString();
  }
  auto r = ParseV2InferRequest(input("[2, 2, 2]", "[[[1,2],[3,4]],[[5,6],[7,8]]]"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->inputs[0].data<int32_t>()[5], 6);
}

TEST(ParseV2InferRequestTest, InputMembersMayComeInAnyOrder) {
  auto r = ParseV2InferRequest(R"({"inputs": [
      {"data": [[1.5, 2], [3, 4]], "shape": [2, 2], "name": "a", "datatype": "FP64"},
      {"data": 9.9674483243918787e-241, "datatype": "FP64", "name": "b", "shape": []},
      {"name": "c", "data": ["x\"y\u00e9", ""], "datatype": "BYTES", "shape": [2]},
      {"shape": [1], "data": [true], "name": "d", "datatype": "BOOL"},
      {"datatype": "INT64", "data": -9223372036854775808, "shape": [1], "name": "e"}
    ], "id": "late"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& in = (*r)->inputs;
  ASSERT_EQ(in.size(), 5u);
  EXPECT_EQ((*r)->id, "late");
  EXPECT_EQ(in[0].name(), "a");
  EXPECT_EQ(in[0].data<double>()[0], 1.5);
  EXPECT_EQ(in[0].data<double>()[3], 4.0);
  EXPECT_EQ(in[1].data<double>()[0], 9.9674483243918787e-241);  // exact, through the deferral
  EXPECT_EQ(in[2].strings(), (std::vector<std::string>{"x\"y\xc3\xa9", ""}));
  EXPECT_EQ(in[3].data<uint8_t>()[0], 1);
  EXPECT_EQ(in[4].data<int64_t>()[0], std::numeric_limits<int64_t>::min());
  // Data that comes first is checked as strictly as data that comes last.
  EXPECT_EQ(ParseError(OneInput(R"({"data": [[1,2,3],[4,5,6,7,8]], "name": "a",
                                    "datatype": "INT32", "shape": [2, 4]})")),
            "input 'a': data does not match shape [2, 4]: data[0] has 3 entries where 4 are "
            "expected (send lists nested exactly as the shape, or one flat list)");
  EXPECT_EQ(ParseError(OneInput(R"({"data": [1, 300], "name": "a", "datatype": "INT8",
                                    "shape": [2]})")),
            "input 'a': element 1 (300) is out of range for INT8");
  EXPECT_EQ(ParseError(OneInput(R"({"data": [1, 2], "name": "a", "shape": [2]})")),
            "inputs[0] ('a') needs a 'datatype'");
  EXPECT_EQ(ParseError(OneInput(R"({"data": [1, 2], "name": "a", "datatype": "FP32", "shape": [2],
                                    "parameters": {"binary_data_size": 8}})"),
                       std::string(8, '\0')),
            "input 'a' has both 'data' and binary_data_size");
  EXPECT_EQ(ParseError(OneInput(R"({"data": {"b64": "AAAA"}, "name": "a", "datatype": "BYTES",
                                    "shape": [1]})")),
            "input 'a' is BYTES but element 0 is an object (expected a string)");
}

TEST(ParseV2InferRequestTest, DuplicateKeysAreRefused) {
  EXPECT_EQ(ParseError(R"({"inputs": [], "inputs": []})"),
            "duplicate key 'inputs' in the JSON object ending at offset 27");
  EXPECT_THAT(ParseError(OneInput(R"({"name": "a", "datatype": "FP32", "shape": [1],
                                      "data": [1], "data": [2]})")),
              StartsWith("duplicate key 'data' in the JSON object ending at offset "));
  EXPECT_THAT(ParseError(OneInput(R"({"name": "a", "name": "b", "datatype": "FP32",
                                      "shape": [1], "data": [1]})")),
              StartsWith("duplicate key 'name'"));
  EXPECT_THAT(ParseError(R"({"inputs": [], "parameters": {"p": 1, "p": 2}})"),
              StartsWith("duplicate key 'p'"));
  EXPECT_THAT(ParseError(R"({"inputs": [], "outputs": [{"name": "y",
                             "parameters": {"binary_data": true, "binary_data": false}}]})"),
              StartsWith("duplicate key 'binary_data'"));
  // Also in members the decoder does not read, and inside data.
  EXPECT_THAT(ParseError(R"({"inputs": [], "x": {"k": 1, "k": 1}})"),
              StartsWith("duplicate key 'k'"));
  EXPECT_THAT(ParseError(OneInput(R"({"name": "a", "datatype": "BYTES", "shape": [1],
                                      "data": [{"b64": "", "b64": ""}]})")),
              StartsWith("duplicate key 'b64'"));
}

TEST(ParseV2InferRequestTest, KnownParametersMustHaveTheirType) {
  EXPECT_EQ(ParseError(R"({"inputs": [], "parameters": {"binary_data_output": 1}})"),
            "parameter 'binary_data_output' in 'parameters' must be a boolean (true or false)");
  EXPECT_EQ(ParseError(R"({"inputs": [], "parameters": {"binary_data_output": "true"}})"),
            "parameter 'binary_data_output' in 'parameters' must be a boolean (true or false)");
  EXPECT_EQ(ParseError(R"({"inputs": [], "outputs": [{"name": "y",
                             "parameters": {"binary_data": "yes"}}]})"),
            "parameter 'binary_data' in 'outputs[0].parameters' must be a boolean (true or "
            "false)");
  EXPECT_EQ(ParseError(R"({"inputs": [], "outputs": [{"name": "y",
                             "parameters": {"binary_data_output": 0}}]})"),
            "parameter 'binary_data_output' in 'outputs[0].parameters' must be a boolean (true "
            "or false)");
  for (const char* bad : {"\"3\"", "1.5", "-1", "true", "18446744073709551615"}) {
    EXPECT_EQ(ParseError(R"({"inputs": [], "outputs": [{"name": "y",
                               "parameters": {"classification": )" + std::string(bad) + "}}]}"),
              "parameter 'classification' in 'outputs[0].parameters' must be a non-negative "
              "integer")
        << bad;
  }
  EXPECT_EQ(ParseError(R"({"inputs": [], "parameters": {"classification": "2"}})"),
            "parameter 'classification' in 'parameters' must be a non-negative integer");
  // An output's name is checked before its parameters.
  EXPECT_EQ(ParseError(R"({"inputs": [], "outputs": [{"parameters": {"binary_data": 1}}]})"),
            "outputs[0] needs a 'name'");
  auto r = ParseV2InferRequest(R"({"inputs": [], "parameters": {"binary_data_output": false},
      "outputs": [{"name": "y", "parameters": {"binary_data": true, "classification": 2}}]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(std::get<int64_t>((*r)->outputs[0].parameters.at("classification")), 2);
  EXPECT_EQ(BinaryOutputsOf(**r).names, std::vector<std::string>{"y"});
}

TEST(ParseV2InferRequestTest, MalformedJsonWinsOverAnEarlierProblem) {
  EXPECT_THAT(ParseError(R"({"id": 5, "inputs": [)"), StartsWith("malformed JSON at offset "));
  EXPECT_THAT(ParseError(OneInput(R"({"name": "a", "datatype": "INT8", "shape": [1],
                                      "data": [300]})") + ","),
              StartsWith("malformed JSON at offset "));
}

TEST(ParseV2InferRequestTest, BinaryBoolBytesMustBeZeroOrOne) {
  const std::string json = OneInput(
      R"({"name": "b", "datatype": "BOOL", "shape": [3], "parameters": {"binary_data_size": 3}})");
  auto r = ParseV2InferRequest(json, std::string("\1\0\1", 3));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->inputs[0].data<uint8_t>()[2], 1);
  // The same check and message as gRPC's raw_input_contents.
  EXPECT_EQ(ParseError(json, std::string("\1\0\2", 3)),
            "input 'b' holds byte 2 at flat index 2; a raw BOOL element must be 0 or 1");
  EXPECT_EQ(ParseError(json, std::string("\xff\0\0", 3)),
            "input 'b' holds byte 255 at flat index 0; a raw BOOL element must be 0 or 1");
}

// ---- every datatype through a request and back out through a response -----

TEST(V2CodecRoundTripTest, EveryDatatype) {
  struct Input {
    const char* datatype;
    const char* data;  // in the canonical form the writer produces
  };
  const Input inputs[] = {
      {"BOOL", "[true,false]"},
      {"UINT8", "[0,255]"},
      {"UINT16", "[0,65535]"},
      {"UINT32", "[0,4294967295]"},
      {"UINT64", "[0,18446744073709551615]"},
      {"INT8", "[-128,127]"},
      {"INT16", "[-32768,32767]"},
      {"INT32", "[-2147483648,2147483647]"},
      {"INT64", "[-9223372036854775808,9223372036854775807]"},
      {"FP16", "[0.5,-65504]"},
      {"FP32", "[0.1,-3.4028235e+38]"},
      {"FP64", "[0.1,-1.7976931348623157e308]"},
      {"BYTES", "[\"\",\"caf\xc3\xa9\"]"},
  };
  std::string body = R"({"inputs": [)";
  for (const Input& in : inputs) {
    if (body.back() != '[') body += ",";
    body += std::string(R"({"name": "in_)") + in.datatype + R"(", "datatype": ")" + in.datatype +
            R"(", "shape": [2], "data": )" + in.data + "}";
  }
  body += "]}";
  auto request = ParseV2InferRequest(body);
  ASSERT_TRUE(request.ok()) << request.status().ToString();
  ASSERT_EQ((*request)->inputs.size(), std::size(inputs));

  InferenceResponse response;
  response.model_name = "m";
  response.model_version = "1";
  response.outputs = (*request)->inputs;
  const std::string out = WriteV2InferResponse(response).value().body;

  rapidjson::Document doc;
  doc.Parse<kJsonParseFlags>(out.data(), out.size());
  ASSERT_FALSE(doc.HasParseError()) << out;
  ASSERT_EQ(doc["outputs"].Size(), std::size(inputs));
  for (const Input& in : inputs) {
    const std::string dt = in.datatype;
    EXPECT_THAT(out, HasSubstr(R"({"name":"in_)" + dt + R"(","datatype":")" + dt +
                               R"(","shape":[2],"data":)" + in.data + "}"));
  }
}

// ---- response writing ------------------------------------------------------

Tensor Fp32(const std::string& name, std::vector<int64_t> shape, std::vector<float> values) {
  Tensor t(name, DataType::kFp32, std::move(shape));
  t.bytes().resize(values.size() * sizeof(float));
  if (!values.empty()) std::memcpy(t.bytes().data(), values.data(), t.bytes().size());
  return t;
}

TEST(WriteV2InferResponseTest, ExactJson) {
  InferenceResponse r;
  r.model_name = "add";
  r.model_version = "3";
  r.id = "req-\"7\"";
  r.outputs.push_back(Fp32("sum", {2}, {0.1f, 2.5f}));
  Tensor label("label", DataType::kBytes, {1});
  label.strings() = {"a\nb"};
  r.outputs.push_back(label);
  auto encoded = WriteV2InferResponse(r).value();
  EXPECT_EQ(encoded.body,
            R"({"model_name":"add","model_version":"3","id":"req-\"7\"","outputs":[)"
            R"({"name":"sum","datatype":"FP32","shape":[2],"data":[0.1,2.5]},)"
            R"({"name":"label","datatype":"BYTES","shape":[1],"data":["a\nb"]}]})");
  EXPECT_EQ(encoded.json_size, encoded.body.size());
}

TEST(WriteV2InferResponseTest, NoIdNoOutputsAndParameters) {
  InferenceResponse r;
  r.model_name = "m";
  r.model_version = "1";
  EXPECT_EQ(WriteV2InferResponse(r).value().body,
            R"({"model_name":"m","model_version":"1","outputs":[]})");
  r.parameters["n"] = int64_t{3};
  r.parameters["b"] = true;
  r.parameters["s"] = std::string("x");
  r.parameters["d"] = 0.25;
  EXPECT_EQ(WriteV2InferResponse(r).value().body,
            R"({"model_name":"m","model_version":"1",)"
            R"("parameters":{"b":true,"d":0.25,"n":3,"s":"x"},"outputs":[]})");
}

TEST(WriteV2InferResponseTest, ScalarAndZeroSizeOutputs) {
  InferenceResponse r;
  r.model_name = "m";
  r.model_version = "1";
  r.outputs.push_back(Fp32("s", {}, {7.0f}));
  r.outputs.push_back(Fp32("z", {0, 4}, {}));
  EXPECT_EQ(WriteV2InferResponse(r).value().body,
            R"({"model_name":"m","model_version":"1","outputs":[)"
            R"({"name":"s","datatype":"FP32","shape":[],"data":[7]},)"
            R"({"name":"z","datatype":"FP32","shape":[0,4],"data":[]}]})");
}

TEST(WriteV2InferResponseTest, BinaryOutputs) {
  InferenceResponse r;
  r.model_name = "m";
  r.model_version = "1";
  r.outputs.push_back(Fp32("y", {1}, {1.0f}));
  r.outputs.push_back(Fp32("z", {1}, {2.0f}));
  BinaryOutputs binary;
  binary.names = {"z"};
  auto encoded = WriteV2InferResponse(r, binary).value();
  const std::string json =
      R"({"model_name":"m","model_version":"1","outputs":[)"
      R"({"name":"y","datatype":"FP32","shape":[1],"data":[1]},)"
      R"({"name":"z","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":4}}]})";
  EXPECT_EQ(encoded.json_size, json.size());
  ASSERT_EQ(encoded.body.size(), json.size() + 4);
  EXPECT_EQ(encoded.body.substr(0, json.size()), json);
  float z;
  std::memcpy(&z, encoded.body.data() + json.size(), 4);
  EXPECT_EQ(z, 2.0f);
}

// A JSON string holds only UTF-8: written raw, such bytes would make the
// whole response invalid JSON. Triton's clients ask for them as binary data.
TEST(WriteV2InferResponseTest, BytesThatAreNotUtf8AreRefusedUnlessBinary) {
  InferenceResponse r;
  r.model_name = "m";
  r.model_version = "1";
  Tensor text("text", DataType::kBytes, {2});
  text.strings() = {"caf\xc3\xa9", "ok"};
  Tensor blob("blob", DataType::kBytes, {2});
  blob.strings() = {"ok", std::string("\xff\x00\xfe", 3)};
  r.outputs = {text, blob};

  auto refused = WriteV2InferResponse(r);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(refused.status().message(),
            "output 'blob' holds a BYTES element that is not valid UTF-8 (flat index 1), which a "
            "JSON string cannot carry; ask for it as binary data (the output's parameter "
            "\"binary_data\": true, or the request's \"binary_data_output\": true) or use gRPC");

  BinaryOutputs binary;
  binary.names = {"blob"};
  auto encoded = WriteV2InferResponse(r, binary);
  ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
  const std::string json = encoded->body.substr(0, encoded->json_size);
  EXPECT_THAT(json, HasSubstr("{\"name\":\"text\",\"datatype\":\"BYTES\",\"shape\":[2],"
                              "\"data\":[\"caf\xc3\xa9\",\"ok\"]}"));
  rapidjson::Document doc;
  EXPECT_TRUE(ParseJson(json, &doc).ok());
  EXPECT_EQ(encoded->body.substr(encoded->json_size),
            std::string("\x02\0\0\0ok\x03\0\0\0\xff\0\xfe", 13));
}

TEST(BinaryOutputsTest, FromRequestParameters) {
  InferenceRequest req;
  EXPECT_FALSE(BinaryOutputsOf(req).any());
  req.outputs.push_back({"y", {{"binary_data", true}}});
  req.outputs.push_back({"z", {{"binary_data", false}}});
  req.outputs.push_back({"w", {{"binary_data", int64_t{1}}}});  // not a boolean: ignored
  BinaryOutputs b = BinaryOutputsOf(req);
  EXPECT_FALSE(b.all);
  EXPECT_EQ(b.names, std::vector<std::string>{"y"});
  EXPECT_TRUE(b.Wants("y"));
  EXPECT_FALSE(b.Wants("z"));
  req.parameters["binary_data_output"] = true;
  EXPECT_TRUE(BinaryOutputsOf(req).all);
  EXPECT_TRUE(BinaryOutputsOf(req).Wants("anything"));
}

// ---- metadata and index ----------------------------------------------------

TEST(WriteV2MetadataTest, ModelMetadata) {
  ModelMetadata m;
  m.name = "iris";
  m.versions = {"1", "2"};
  m.platform = "onnxruntime_onnx";
  m.inputs = {{"x", DataType::kFp32, {-1, 4}}};
  m.outputs = {{"label", DataType::kInt64, {-1}}};
  EXPECT_EQ(WriteV2ModelMetadata(m),
            R"({"name":"iris","versions":["1","2"],"platform":"onnxruntime_onnx",)"
            R"("inputs":[{"name":"x","datatype":"FP32","shape":[-1,4]}],)"
            R"("outputs":[{"name":"label","datatype":"INT64","shape":[-1]}]})");
}

TEST(WriteV2MetadataTest, ServerMetadata) {
  EXPECT_EQ(WriteV2ServerMetadata("berth", "0.1.0", {"binary_tensor_data"}),
            R"({"name":"berth","version":"0.1.0","extensions":["binary_tensor_data"]})");
}

// Which entries an index holds is RepositoryIndex's (core/model_metadata);
// the codec writes each, leaving out the version of a model without one.
TEST(WriteV2MetadataTest, RepositoryIndex) {
  const std::vector<IndexEntry> index = {
      {"broken", "", ModelState::kUnavailable, "bad \"config\""},
      {"good", "1", ModelState::kUnavailable, "corrupt"},
      {"good", "2", ModelState::kReady, ""},
  };
  EXPECT_EQ(WriteV2RepositoryIndex(index),
            R"([{"name":"broken","state":"UNAVAILABLE","reason":"bad \"config\""},)"
            R"({"name":"good","version":"1","state":"UNAVAILABLE","reason":"corrupt"},)"
            R"({"name":"good","version":"2","state":"READY","reason":""}])");
}

// Triton's statistics shape, every duration with both fields.
TEST(WriteV2MetadataTest, ModelStatistics) {
  ModelStatistics s;
  s.name = "iris";
  s.version = "2";
  s.last_inference_ms = 1700000000123;
  s.inference_count = 7;
  s.execution_count = 3;
  s.success = {5, 500};
  s.fail = {1, 7};
  s.queue = {5, 40};
  s.compute_input = {5, 1};
  s.compute_infer = {5, 20};
  s.compute_output = {5, 3};
  s.batch_stats = {{1, {2, 2}, {2, 4}, {2, 6}}, {5, {1, 1}, {1, 2}, {1, 3}}};
  const std::string d0 = R"({"count":0,"ns":0})";
  EXPECT_EQ(WriteV2ModelStatistics({s}),
            R"({"model_stats":[{"name":"iris","version":"2","last_inference":1700000000123,)"
            R"("inference_count":7,"execution_count":3,"inference_stats":{)"
            R"("success":{"count":5,"ns":500},"fail":{"count":1,"ns":7},)"
            R"("queue":{"count":5,"ns":40},"compute_input":{"count":5,"ns":1},)"
            R"("compute_infer":{"count":5,"ns":20},"compute_output":{"count":5,"ns":3},)"
            R"("cache_hit":)" + d0 + R"(,"cache_miss":)" + d0 + R"(},"batch_stats":[)"
            R"({"batch_size":1,"compute_input":{"count":2,"ns":2},)"
            R"("compute_infer":{"count":2,"ns":4},"compute_output":{"count":2,"ns":6}},)"
            R"({"batch_size":5,"compute_input":{"count":1,"ns":1},)"
            R"("compute_infer":{"count":1,"ns":2},"compute_output":{"count":1,"ns":3}}]}]})");
  EXPECT_EQ(WriteV2ModelStatistics({}), R"({"model_stats":[]})");
}

}  // namespace
}  // namespace berth::http
