#include "server/http/tfserving_json_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace berth::http {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::vector<TensorSpec> kIris = {{"X", DataType::kFp32, {-1, 4}}};
const std::vector<TensorSpec> kTwoInputs = {{"sex", DataType::kBytes, {-1, 1}},
                                            {"X", DataType::kFp32, {-1, 2}}};

std::string ParseError(const std::string& body, const std::vector<TensorSpec>& inputs) {
  auto parsed = ParseTfServingPredictRequest(body, inputs);
  if (parsed.ok()) return "<no error>";
  EXPECT_EQ(parsed.status().code(), Status::Code::kInvalidArgument);
  return parsed.status().message();
}

TEST(ParseTfServingPredictRequestTest, RowFormat) {
  auto parsed = ParseTfServingPredictRequest(
      R"({"signature_name": "serving_default", "instances": [[1, 2, 3, 4], [5, 6, 7, 8]]})",
      kIris);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->format, TfServingFormat::kRow);
  EXPECT_EQ(parsed->rows, 2);
  ASSERT_EQ(parsed->request->inputs.size(), 1u);
  EXPECT_THAT(parsed->request->inputs[0].shape(), ElementsAre(2, 4));
}

TEST(ParseTfServingPredictRequestTest, RowFormatWithNamedInputs) {
  auto parsed = ParseTfServingPredictRequest(
      R"({"instances": [{"sex": "sex_1", "X": [1, 2]}, {"X": [3, 4], "sex": "sex_2"}]})",
      kTwoInputs);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_EQ(parsed->request->inputs.size(), 2u);
  EXPECT_THAT(parsed->request->inputs[0].strings(), ElementsAre("sex_1", "sex_2"));
  EXPECT_THAT(parsed->request->inputs[1].shape(), ElementsAre(2, 2));
}

TEST(ParseTfServingPredictRequestTest, ColumnarFormat) {
  auto single = ParseTfServingPredictRequest(R"({"inputs": [[1, 2, 3, 4]]})", kIris);
  ASSERT_TRUE(single.ok()) << single.status().ToString();
  EXPECT_EQ(single->format, TfServingFormat::kColumnar);
  EXPECT_THAT(single->request->inputs[0].shape(), ElementsAre(1, 4));

  auto named = ParseTfServingPredictRequest(
      R"({"inputs": {"X": [[1, 2], [3, 4], [5, 6]], "sex": ["a", "b", "c"]}})", kTwoInputs);
  ASSERT_TRUE(named.ok()) << named.status().ToString();
  ASSERT_EQ(named->request->inputs.size(), 2u);
  EXPECT_EQ(named->request->inputs[0].name(), "sex");
  EXPECT_THAT(named->request->inputs[0].shape(), ElementsAre(3, 1));
  EXPECT_THAT(named->request->inputs[1].shape(), ElementsAre(3, 2));
}

TEST(ParseTfServingPredictRequestTest, RefusesBadBodies) {
  EXPECT_THAT(ParseError("{\"instances\": ", kIris), HasSubstr("malformed JSON"));
  EXPECT_THAT(ParseError("[[1, 2, 3, 4]]", kIris), HasSubstr("must be a JSON object"));
  EXPECT_THAT(ParseError("{}", kIris), HasSubstr("not neither"));
  EXPECT_THAT(ParseError(R"({"instances": [[1, 2, 3, 4]], "inputs": [[1, 2, 3, 4]]})", kIris),
              HasSubstr("not both"));
  EXPECT_THAT(ParseError(R"({"instance": [[1, 2, 3, 4]]})", kIris),
              HasSubstr("unknown field 'instance'"));
  EXPECT_THAT(ParseError(R"({"signature_name": "classify", "instances": [[1, 2, 3, 4]]})", kIris),
              HasSubstr("unknown signature 'classify'"));
  EXPECT_THAT(ParseError(R"({"inputs": [1, 2, 3, 4]})", kIris),
              HasSubstr("'inputs' (input 'X' is FP32 [-1, 4]) has shape [4], expected [-1, 4]"));
  EXPECT_THAT(ParseError(R"({"inputs": [[1, 2]]})", kTwoInputs),
              HasSubstr("'inputs' must be an object {input name: value}"));
  EXPECT_THAT(ParseError(R"({"inputs": {"X": [[1, 2]], "age": [1]}})", kTwoInputs),
              HasSubstr("'inputs' has 'age', which is not an input"));
  EXPECT_THAT(ParseError(R"({"inputs": {"X": [[1, 2]]}})", kTwoInputs),
              HasSubstr("'inputs' lacks input 'sex'"));
}

TEST(ParseTfServingPredictRequestTest, RowsAreReadOneByOne) {
  // Many rows, as the streaming reader hands them to the builder one at a time.
  std::string body = R"({"instances": [)";
  for (int r = 0; r < 3000; ++r) {
    body += (r ? ", [" : "[") + std::to_string(r) + ", 0.5, -1e-3, 7]";
  }
  body += R"(], "signature_name": "serving_default"})";
  auto parsed = ParseTfServingPredictRequest(body, kIris);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->rows, 3000);
  const Tensor& x = parsed->request->inputs[0];
  EXPECT_THAT(x.shape(), ElementsAre(3000, 4));
  EXPECT_EQ(x.data<float>()[4 * 2999], 2999.0f);
  EXPECT_EQ(x.data<float>()[4 * 2999 + 2], -1e-3f);
  // A bare value per row for a [-1, 1] input, and a single-row list.
  const std::vector<TensorSpec> column = {{"age", DataType::kInt64, {-1, 1}}};
  auto ages = ParseTfServingPredictRequest(R"({"instances": [31, 40, 52]})", column);
  ASSERT_TRUE(ages.ok()) << ages.status().ToString();
  EXPECT_THAT(ages->request->inputs[0].shape(), ElementsAre(3, 1));
  EXPECT_EQ(ages->request->inputs[0].data<int64_t>()[2], 52);
}

TEST(ParseTfServingPredictRequestTest, RowErrorsNameTheRow) {
  EXPECT_THAT(ParseError(R"({"instances": [[1, 2, 3, 4], [1, 2, 3]]})", kIris),
              HasSubstr("instances[1] (input 'X' is FP32 [-1, 4]) has shape [3], expected [4]"));
  EXPECT_THAT(ParseError(R"({"instances": [[1, 2, 3, 4], [1, 2, "3", 4]]})", kIris),
              HasSubstr("input 'X' is FP32 but element 6 is a string (expected a number)"));
  EXPECT_THAT(ParseError(R"({"instances": [{"sex": "a", "X": [1, 2]}, [1, 2]]})", kTwoInputs),
              HasSubstr("instances[1] is not an object, but instances[0] is"));
  EXPECT_THAT(ParseError(R"({"instances": []})", kIris), HasSubstr("'instances' is empty"));
  EXPECT_THAT(ParseError(R"({"instances": {"X": [1, 2, 3, 4]}})", kIris),
              HasSubstr("'instances' must be a list of rows"));
  EXPECT_THAT(ParseError(R"({"instances": 5})", kIris),
              HasSubstr("'instances' must be a list of rows"));
  EXPECT_THAT(ParseError(R"({"signature_name": 5, "instances": [[1, 2, 3, 4]]})", kIris),
              HasSubstr("'signature_name' must be a string"));
  EXPECT_THAT(ParseError(R"({"instances": [[1, 2, 3, 4]]} [)", kIris),
              HasSubstr("malformed JSON"));
  // A problem in a row does not hide malformed JSON after it.
  EXPECT_THAT(ParseError(R"({"instances": [[1, 2, 3], [)", kIris), HasSubstr("malformed JSON"));
}

TEST(ParseTfServingPredictRequestTest, DuplicateKeysAreRefused) {
  EXPECT_THAT(ParseError(R"({"instances": [[1, 2, 3, 4]], "instances": [[1, 2, 3, 4]]})", kIris),
              HasSubstr("duplicate key 'instances'"));
  EXPECT_THAT(ParseError(R"({"instances": [{"sex": "a", "X": [1, 2], "X": [3, 4]}]})",
                         kTwoInputs),
              HasSubstr("duplicate key 'X'"));
  EXPECT_THAT(ParseError(R"({"inputs": {"X": [[1, 2]], "X": [[1, 2]], "sex": ["a"]}})",
                         kTwoInputs),
              HasSubstr("duplicate key 'X'"));
}

TEST(ParseTfServingPredictRequestTest, ColumnsAreReadAsTheyCome) {
  const std::vector<TensorSpec> column = {{"age", DataType::kFp32, {-1, 1}}};
  // Trailing dimensions of size 1 may be left out; a bare value is one row.
  for (const char* body : {R"({"inputs": [1, 2, 3]})", R"({"inputs": [[1], [2], [3]]})"}) {
    auto parsed = ParseTfServingPredictRequest(body, column);
    ASSERT_TRUE(parsed.ok()) << body << ": " << parsed.status().ToString();
    EXPECT_THAT(parsed->request->inputs[0].shape(), ElementsAre(3, 1));
    EXPECT_EQ(parsed->request->inputs[0].data<float>()[2], 3.0f);
  }
  auto empty = ParseTfServingPredictRequest(R"({"inputs": []})", kIris);
  EXPECT_THAT(empty.status().message(),
              HasSubstr("'inputs' (input 'X' is FP32 [-1, 4]) has shape [0], expected [-1, 4]"));
  auto none = ParseTfServingPredictRequest(R"({"inputs": [[]]})", column);
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.status().message(), HasSubstr("has shape [1, 0], expected [-1, 1]"));
  auto zero_rows = ParseTfServingPredictRequest(R"({"inputs": {"X": [], "sex": []}})",
                                                {{"sex", DataType::kBytes, {-1}},
                                                 {"X", DataType::kFp32, {-1}}});
  ASSERT_TRUE(zero_rows.ok()) << zero_rows.status().ToString();
  EXPECT_THAT(zero_rows->request->inputs[1].shape(), ElementsAre(0));
  // Ragged, too deep, and wrongly typed values, with the tree decoder's messages.
  EXPECT_THAT(ParseError(R"({"inputs": [[1, 2, 3, 4], [1, 2, 3]]})", kIris),
              HasSubstr("'inputs' (input 'X' is FP32 [-1, 4]) is a ragged array"));
  EXPECT_THAT(ParseError(R"({"inputs": [[1, 2, 3, 4], 5]})", kIris),
              HasSubstr("is a ragged array"));
  EXPECT_THAT(ParseError(R"({"inputs": [1, [2]]})", column), HasSubstr("is a ragged array"));
  EXPECT_THAT(ParseError(R"({"inputs": [[], [1]]})", column), HasSubstr("is a ragged array"));
  EXPECT_THAT(ParseError(R"({"inputs": [[[1, 2, 3, 4]]]})", kIris),
              HasSubstr("'inputs' (input 'X' is FP32 [-1, 4]) is nested deeper than 2 level(s), "
                        "expected [-1, 4]"));
  EXPECT_THAT(ParseError(R"({"inputs": [[1, 2, 3, "4"]]})", kIris),
              HasSubstr("input 'X' is FP32 but element 3 is a string (expected a number)"));
  EXPECT_THAT(ParseError(R"({"inputs": [[1, 2, 3, {"a": [1]}]]})", kIris),
              HasSubstr("input 'X' is FP32 but element 3 is an object (expected a number)"));
  EXPECT_THAT(ParseError(R"({"inputs": {"X": [[1, 2]], "sex": [["a"], "b"]}})", kTwoInputs),
              HasSubstr("'inputs'['sex'] (input 'sex' is BYTES [-1, 1]) is a ragged array"));
  // Members in any order, and the columnar value before the signature.
  auto named = ParseTfServingPredictRequest(
      R"({"inputs": {"X": [[1, 2], [3, 4]], "sex": ["a", "b"]},
          "signature_name": "serving_default"})",
      kTwoInputs);
  ASSERT_TRUE(named.ok()) << named.status().ToString();
  EXPECT_THAT(named->request->inputs[0].strings(), ElementsAre("a", "b"));
  EXPECT_EQ(named->request->inputs[1].data<float>()[3], 4.0f);
}

Tensor Int64s(std::string name, std::vector<int64_t> shape, std::vector<int64_t> values) {
  Tensor t(std::move(name), DataType::kInt64, std::move(shape));
  EXPECT_TRUE(t.Allocate().ok());
  std::memcpy(t.bytes().data(), values.data(), values.size() * sizeof(int64_t));
  return t;
}

// TF Serving's binary strings: {"b64": "<base64>"} is one BYTES element,
// in rows (bare or named) and in columns, nested as any value.
TEST(ParseTfServingPredictRequestTest, Base64ObjectsAreBytes) {
  const std::vector<TensorSpec> image = {{"image_bytes", DataType::kBytes, {-1}}};
  // "/wD+" is ff 00 fe: not text, with a NUL inside.
  const std::string binary("\xff\x00\xfe", 3);
  for (const char* body : {R"({"instances": [{"b64": "/wD+"}, "abc"]})",
                           R"({"instances": [{"image_bytes": {"b64": "/wD+"}},
                                             {"image_bytes": "abc"}]})",
                           R"({"inputs": [{"b64": "/wD+"}, {"b64": "YWJj"}]})",
                           R"({"inputs": {"image_bytes": [{"b64": "/wD+"}, "abc"]}})"}) {
    auto parsed = ParseTfServingPredictRequest(body, image);
    ASSERT_TRUE(parsed.ok()) << body << ": " << parsed.status().ToString();
    ASSERT_EQ(parsed->request->inputs.size(), 1u);
    EXPECT_THAT(parsed->request->inputs[0].shape(), ElementsAre(2)) << body;
    EXPECT_THAT(parsed->request->inputs[0].strings(), ElementsAre(binary, "abc")) << body;
  }
  auto named = ParseTfServingPredictRequest(
      R"({"instances": [{"sex": [{"b64": "c2V4XzE="}], "X": [1, 2]}]})", kTwoInputs);
  ASSERT_TRUE(named.ok()) << named.status().ToString();
  EXPECT_THAT(named->request->inputs[0].strings(), ElementsAre("sex_1"));
  auto columns = ParseTfServingPredictRequest(
      R"({"inputs": {"X": [[1, 2]], "sex": [[{"b64": ""}]]}})", kTwoInputs);
  ASSERT_TRUE(columns.ok()) << columns.status().ToString();
  EXPECT_THAT(columns->request->inputs[0].strings(), ElementsAre(""));
}

TEST(ParseTfServingPredictRequestTest, Base64ObjectsAreRefusedWhereTheyDoNotFit) {
  const std::vector<TensorSpec> image = {{"image_bytes", DataType::kBytes, {-1}}};
  EXPECT_THAT(ParseError(R"({"instances": [{"b64": "/wD"}]})", image),
              HasSubstr("input 'image_bytes': element 0 is not valid base64: base64 text must "
                        "be a multiple of 4"));
  EXPECT_THAT(ParseError(R"({"inputs": ["a", {"b64": "/w?+"}]})", image),
              HasSubstr("input 'image_bytes': element 1 is not valid base64: base64 text has an "
                        "invalid character at offset 2"));
  // A number input takes no binary string.
  EXPECT_THAT(ParseError(R"({"instances": [{"X": [{"b64": "AAAA"}, 2], "sex": "a"}]})",
                         kTwoInputs),
              HasSubstr("input 'X' is FP32 but element 0 is a {\"b64\": ...} binary string "
                        "(expected a number)"));
  EXPECT_THAT(ParseError(R"({"inputs": [[{"b64": "AAAA"}, 2, 3, 4]]})", kIris),
              HasSubstr("input 'X' is FP32 but element 0 is a {\"b64\": ...} binary string"));
  // Objects of other forms stay wrongly typed elements.
  for (const char* body : {R"({"inputs": [{"b64": "AAAA", "x": 1}]})",
                           R"({"inputs": [{"b64": ["AAAA"]}]})", R"({"inputs": [{"b64": 1}]})",
                           R"({"inputs": [{}]})", R"({"instances": [{"b64": 1}]})"}) {
    EXPECT_THAT(ParseError(body, image), HasSubstr("element 0 is an object (expected a string)"))
        << body;
  }
}

TEST(WriteTfServingPredictResponseTest, RowAndColumnarResponses) {
  InferenceResponse one;
  one.outputs.push_back(Int64s("label", {2}, {1, 0}));
  EXPECT_EQ(*WriteTfServingPredictResponse(one, TfServingFormat::kRow, 2),
            R"({"predictions":[1,0]})");
  EXPECT_EQ(*WriteTfServingPredictResponse(one, TfServingFormat::kColumnar, 0),
            R"({"outputs":[1,0]})");

  InferenceResponse two;
  two.outputs.push_back(Int64s("label", {2}, {1, 0}));
  two.outputs.push_back(Int64s("votes", {2, 2}, {3, 7, 9, 1}));
  EXPECT_EQ(*WriteTfServingPredictResponse(two, TfServingFormat::kRow, 2),
            R"({"predictions":[{"label":1,"votes":[3,7]},{"label":0,"votes":[9,1]}]})");
  EXPECT_EQ(*WriteTfServingPredictResponse(two, TfServingFormat::kColumnar, 0),
            R"({"outputs":{"label":[1,0],"votes":[[3,7],[9,1]]}})");
}

// TF Serving writes binary strings as {"b64": ...}; UTF-8 text stays a string.
TEST(WriteTfServingPredictResponseTest, BytesThatAreNotUtf8AreBase64) {
  InferenceResponse r;
  Tensor label("label", DataType::kBytes, {2});
  label.strings() = {"caf\xc3\xa9", std::string("\xff\x00\xfe", 3)};
  r.outputs.push_back(label);
  EXPECT_EQ(*WriteTfServingPredictResponse(r, TfServingFormat::kRow, 2),
            "{\"predictions\":[\"caf\xc3\xa9\",{\"b64\":\"/wD+\"}]}");
  EXPECT_EQ(*WriteTfServingPredictResponse(r, TfServingFormat::kColumnar, 0),
            "{\"outputs\":[\"caf\xc3\xa9\",{\"b64\":\"/wD+\"}]}");
  r.outputs.push_back(Int64s("votes", {2}, {3, 7}));
  EXPECT_EQ(*WriteTfServingPredictResponse(r, TfServingFormat::kColumnar, 0),
            "{\"outputs\":{\"label\":[\"caf\xc3\xa9\",{\"b64\":\"/wD+\"}],\"votes\":[3,7]}}");
}

TEST(WriteTfServingModelStatusTest, MapsStatesHighestVersionFirst) {
  std::vector<VersionEntry> versions(3);
  versions[0].version = 1;
  versions[0].state = ModelState::kReady;
  versions[1].version = 2;
  versions[1].state = ModelState::kUnavailable;
  versions[1].reason = "bad \"file\"";
  versions[2].version = 3;
  versions[2].state = ModelState::kLoading;
  EXPECT_EQ(WriteTfServingModelStatus(versions),
            R"({"model_version_status":[)"
            R"({"version":"3","state":"LOADING","status":{"error_code":"OK","error_message":""}},)"
            R"({"version":"2","state":"END","status":{"error_code":"UNKNOWN",)"
            R"("error_message":"bad \"file\""}},)"
            R"({"version":"1","state":"AVAILABLE",)"
            R"("status":{"error_code":"OK","error_message":""}}]})");
}

}  // namespace
}  // namespace berth::http
