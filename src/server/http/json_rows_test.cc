#include "server/http/json_rows.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace berth::http {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

rapidjson::Document Json(const std::string& text) {
  rapidjson::Document doc;
  EXPECT_TRUE(ParseJson(text, &doc).ok()) << text;
  return doc;
}

StatusOr<std::vector<int64_t>> Shape(const std::string& json, std::vector<int64_t> pattern) {
  return ResolveJsonShape(Json(json), pattern, "x");
}

std::vector<float> Floats(const Tensor& t) {
  std::vector<float> out(t.bytes().size() / sizeof(float));
  std::memcpy(out.data(), t.bytes().data(), t.bytes().size());
  return out;
}

const std::vector<TensorSpec> kIris = {{"X", DataType::kFp32, {-1, 4}}};
// A DataFrame pipeline converted by skl2onnx: one [-1, 1] input per column.
const std::vector<TensorSpec> kColumns = {{"age", DataType::kFp32, {-1, 1}},
                                          {"city", DataType::kBytes, {-1, 1}}};

StatusOr<std::vector<Tensor>> Rows(const std::string& json, const std::vector<TensorSpec>& inputs,
                                   RowForm form = RowForm::kAuto) {
  return TensorsFromRows(Json(json), inputs, form, "instances");
}

std::string RowsError(const std::string& json, const std::vector<TensorSpec>& inputs,
                      RowForm form = RowForm::kAuto) {
  auto t = Rows(json, inputs, form);
  if (t.ok()) return "<no error>";
  EXPECT_EQ(t.status().code(), Status::Code::kInvalidArgument) << t.status().ToString();
  return t.status().message();
}

TEST(CheckMembersTest, NamesTheUnknownField) {
  EXPECT_TRUE(CheckMembers(Json(R"({"a": 1, "b": 2})"), {"a", "b"}, "the request").ok());
  Status s = CheckMembers(Json(R"({"a": 1, "instance": 2})"), {"a", "instances"}, "the request");
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("unknown field 'instance'"));
  EXPECT_THAT(s.message(), HasSubstr("'instances'"));
}

TEST(ResolveJsonShapeTest, NestingGivesTheShape) {
  EXPECT_THAT(*Shape("[1, 2, 3, 4]", {4}), ElementsAre(4));
  EXPECT_THAT(*Shape("[1, 2, 3]", {-1}), ElementsAre(3));
  EXPECT_THAT(*Shape("[[1, 2], [3, 4], [5, 6]]", {-1, 2}), ElementsAre(3, 2));
  EXPECT_THAT(*Shape("[]", {-1}), ElementsAre(0));
  EXPECT_THAT(*Shape("7", {}), ElementsAre());
}

TEST(ResolveJsonShapeTest, TrailingOnesMayBeLeftOut) {
  EXPECT_THAT(*Shape("5.5", {1}), ElementsAre(1));
  EXPECT_THAT(*Shape("\"paris\"", {-1}), ElementsAre(1));
  EXPECT_THAT(*Shape("[\"a\", \"b\"]", {-1, 1}), ElementsAre(2, 1));
  EXPECT_THAT(*Shape("3", {1, 1}), ElementsAre(1, 1));
}

TEST(ResolveJsonShapeTest, RefusesShapesThePatternDoesNotAllow) {
  EXPECT_THAT(Shape("[1, 2, 3]", {4}).status().message(),
              HasSubstr("x has shape [3], expected [4]"));
  EXPECT_THAT(Shape("5", {4}).status().message(), HasSubstr("x has shape [], expected [4]"));
  EXPECT_THAT(Shape("[[1, 2]]", {2}).status().message(),
              HasSubstr("x is nested deeper than 1 level(s), expected [2]"));
  EXPECT_THAT(Shape("[[[1]]]", {}).status().message(),
              HasSubstr("x is nested deeper than 0 level(s), expected []"));
  EXPECT_THAT(Shape("[[1, 2], [3]]", {-1, -1}).status().message(), HasSubstr("ragged"));
  EXPECT_THAT(Shape("[[1, 2], 3]", {-1, -1}).status().message(), HasSubstr("ragged"));
  // Equal element counts do not hide a ragged array.
  EXPECT_THAT(Shape("[[1, 2], [3, 4, 5], [6]]", {-1, -1}).status().message(), HasSubstr("ragged"));
}

TEST(TensorsFromRowsTest, DeepNestingIsRefusedWithoutDeepRecursion) {
  const int depth = 1000000;
  const std::string deep = "[" + std::string(depth, '[') + std::string(depth, ']') + "]";
  rapidjson::Document doc;
  ASSERT_TRUE(ParseJson(deep, &doc).ok());
  auto tensors = TensorsFromRows(doc, kIris, RowForm::kAuto, "instances");
  EXPECT_THAT(tensors.status().message(), HasSubstr("instances[0]"));
  EXPECT_THAT(tensors.status().message(), HasSubstr("is nested deeper than 1 level(s)"));
}

TEST(TensorsFromRowsTest, BareRowsFeedTheOnlyInput) {
  auto tensors = Rows("[[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]", kIris);
  ASSERT_TRUE(tensors.ok()) << tensors.status().ToString();
  ASSERT_EQ(tensors->size(), 1u);
  const Tensor& x = (*tensors)[0];
  EXPECT_EQ(x.name(), "X");
  EXPECT_EQ(x.datatype(), DataType::kFp32);
  EXPECT_THAT(x.shape(), ElementsAre(2, 4));
  EXPECT_THAT(Floats(x), ElementsAre(5.1f, 3.5f, 1.4f, 0.2f, 6.7f, 3.0f, 5.2f, 2.3f));
}

TEST(TensorsFromRowsTest, ObjectRowsMixNumbersAndStringsByInputName) {
  auto tensors = Rows(R"([{"city": "paris", "age": 31}, {"age": 47.5, "city": "oslo"}])", kColumns,
                      RowForm::kNamed);
  ASSERT_TRUE(tensors.ok()) << tensors.status().ToString();
  ASSERT_EQ(tensors->size(), 2u);
  const Tensor& age = (*tensors)[0];
  const Tensor& city = (*tensors)[1];
  EXPECT_EQ(age.name(), "age");
  EXPECT_THAT(age.shape(), ElementsAre(2, 1));
  EXPECT_THAT(Floats(age), ElementsAre(31.0f, 47.5f));
  EXPECT_EQ(city.datatype(), DataType::kBytes);
  EXPECT_THAT(city.shape(), ElementsAre(2, 1));
  EXPECT_THAT(city.strings(), ElementsAre("paris", "oslo"));
}

TEST(TensorsFromRowsTest, ObjectRowsAlsoServeASingleInputModel) {
  auto tensors = Rows(R"([{"X": [1, 2, 3, 4]}])", kIris);
  ASSERT_TRUE(tensors.ok()) << tensors.status().ToString();
  EXPECT_THAT((*tensors)[0].shape(), ElementsAre(1, 4));
}

TEST(TensorsFromRowsTest, ListedPerRowValuesAreAccepted) {
  auto tensors = Rows(R"([{"age": [31], "city": ["paris"]}])", kColumns);
  ASSERT_TRUE(tensors.ok()) << tensors.status().ToString();
  EXPECT_THAT((*tensors)[1].strings(), ElementsAre("paris"));
}

TEST(TensorsFromRowsTest, RefusesMalformedLists) {
  EXPECT_THAT(RowsError("{}", kIris), HasSubstr("'instances' must be a list of rows"));
  EXPECT_THAT(RowsError("[]", kIris), HasSubstr("'instances' is empty"));
  EXPECT_THAT(RowsError(R"([[1, 2, 3, 4], {"X": [1, 2, 3, 4]}])", kIris),
              HasSubstr("instances[1] is an object, but instances[0] is not"));
  EXPECT_THAT(RowsError(R"([{"X": [1, 2, 3, 4]}, [1, 2, 3, 4]])", kIris),
              HasSubstr("instances[1] is not an object"));
}

TEST(TensorsFromRowsTest, NamedFormNeedsObjects) {
  EXPECT_THAT(RowsError("[[1, 2, 3, 4]]", kIris, RowForm::kNamed),
              HasSubstr("instances[0] must be an object {input name: value} (inputs: 'X')"));
}

TEST(TensorsFromRowsTest, BareRowsNeedASingleInputModel) {
  EXPECT_THAT(RowsError("[[31, \"paris\"]]", kColumns),
              HasSubstr("the model has 2 inputs ('age', 'city')"));
}

TEST(TensorsFromRowsTest, NamesUnknownMissingAndRepeatedInputs) {
  EXPECT_THAT(RowsError(R"([{"age": 31, "city": "paris", "country": "fr"}])", kColumns),
              HasSubstr("instances[0] has 'country', which is not an input of the model "
                        "(inputs: 'age', 'city')"));
  EXPECT_THAT(RowsError(R"([{"age": 31, "city": "paris"}, {"age": 40}])", kColumns),
              HasSubstr("instances[1] lacks input 'city' (BYTES [-1, 1])"));
  // A repeated name never reaches the rows: the JSON reader refuses it.
  rapidjson::Document doc;
  EXPECT_EQ(ParseJson(R"([{"age": 31, "age": 32, "city": "x"}])", &doc).message(),
            "duplicate key 'age' in the JSON object ending at offset 35");
}

TEST(TensorsFromRowsTest, RowsMustAgreeInShape) {
  EXPECT_THAT(RowsError("[[1, 2, 3, 4], [1, 2, 3]]", kIris),
              HasSubstr("instances[1] (input 'X' is FP32 [-1, 4]) has shape [3], expected [4]"));
  const std::vector<TensorSpec> open = {{"v", DataType::kFp32, {-1, -1}}};
  EXPECT_THAT(RowsError("[[1, 2, 3], [1, 2]]", open),
              HasSubstr("instances[1] has shape [2], but instances[0] has [3]"));
}

TEST(TensorsFromRowsTest, ElementTypesFollowTheInputDatatype) {
  EXPECT_THAT(RowsError(R"([{"age": "31", "city": "paris"}])", kColumns),
              HasSubstr("input 'age' is FP32 but element 0 is a string"));
  EXPECT_THAT(RowsError(R"([{"age": 31, "city": 7}])", kColumns),
              HasSubstr("input 'city' is BYTES but element 0 is an integer"));
}

TEST(TensorsFromRowsTest, AnInputWithoutBatchDimensionIsRefused) {
  const std::vector<TensorSpec> scalar = {{"s", DataType::kFp32, {}}};
  EXPECT_THAT(RowsError("[1]", scalar), HasSubstr("no batch dimension"));
}

// The forms of the two doors that read row bodies: the row route and a
// cloud route (Azure's: two list keys and a bare list; Vertex's parameters).
const RowsBody kRowRoute{
    .list_keys = {"instances"},
    .row_form = RowForm::kNamed,
    .not_object = "the request body must be a JSON object {\"instances\": [...]}",
    .expected = "'instances'",
    .missing = "the request needs 'instances'",
};
const RowsBody kCloud{
    .list_keys = {"instances", "data"},
    .bare_list = true,
    .parameters = true,
    .not_object = "the request body must be one of them",
    .expected = "one of them",
    .missing = "the request needs a list",
};

std::string BodyError(const std::string& body, const RowsBody& form,
                      const std::vector<TensorSpec>& inputs) {
  auto t = ReadRowsBody(body, form, inputs);
  if (t.ok()) return "<no error>";
  EXPECT_EQ(t.status().code(), Status::Code::kInvalidArgument) << t.status().ToString();
  return t.status().message();
}

// ReadRowsBody on {"instances": <list>} gives what TensorsFromRows gives for
// the list: the same tensors, or the same error.
TEST(ReadRowsBodyTest, AgreesWithTensorsFromRows) {
  const std::vector<std::pair<std::string, const std::vector<TensorSpec>*>> cases = {
      {"[[1, 2, 3, 4], [5, 6, 7, 8.5]]", &kIris},
      {"[1, 2, 3, 4]", &kIris},
      {R"([{"age": 31, "city": "paris"}, {"city": ["lyon"], "age": [40.25]}])", &kColumns},
      {R"([{"X": [1, 2, 3, 4]}, {"X": [[1], [2], [3], [4]]}])", &kIris},
      {"[[1, 2, 3, 4], [1, 2, 3]]", &kIris},
      {R"([[1, 2, 3, 4], {"X": [1, 2, 3, 4]}])", &kIris},
      {R"([{"age": 31, "city": "paris"}, {"age": 40}])", &kColumns},
      {R"([{"age": "31", "city": "paris"}])", &kColumns},
      {"[[31, \"paris\"]]", &kColumns},
      {"[[1, 2, 3, 4], null, [1, 2, 3, 4]]", &kIris},
      {"[[1, 2, 3, 4], [1, 2, 3, true]]", &kIris},
      {"[[[[[[[[1]]]]]]]]", &kIris},
      {"[]", &kIris},
      {"{}", &kIris},
      {"7", &kIris},
  };
  for (const auto& [list, inputs] : cases) {
    SCOPED_TRACE(list);
    auto want = TensorsFromRows(Json(list), *inputs, RowForm::kAuto, "instances");
    auto got = ReadRowsBody(R"({"instances": )" + list + "}", kCloud, *inputs);
    ASSERT_EQ(got.ok(), want.ok()) << got.status().ToString() << " / " << want.status().ToString();
    if (!want.ok()) {
      EXPECT_EQ(got.status().message(), want.status().message());
      continue;
    }
    ASSERT_EQ(got->size(), want->size());
    for (size_t i = 0; i < want->size(); ++i) {
      EXPECT_EQ((*got)[i].name(), (*want)[i].name());
      EXPECT_EQ((*got)[i].shape(), (*want)[i].shape());
      if ((*want)[i].datatype() == DataType::kBytes) {
        EXPECT_EQ((*got)[i].strings(), (*want)[i].strings());
      } else {
        EXPECT_EQ(Floats((*got)[i]), Floats((*want)[i]));
      }
    }
  }
}

TEST(ReadRowsBodyTest, ReadsManyRowsAndRowsLargerThanItsBuffer) {
  std::string body = "[";
  for (int r = 0; r < 1000; ++r) {
    body += (r == 0 ? "" : ",") + std::string(R"({"age": )") + std::to_string(r) +
            R"(, "city": ")" + std::string(r % 7 == 0 ? 5000 : 3, 'a' + r % 26) + "\"}";
  }
  body += "]";
  auto tensors = ReadRowsBody(body, kCloud, kColumns);
  ASSERT_TRUE(tensors.ok()) << tensors.status().ToString();
  EXPECT_THAT((*tensors)[0].shape(), ElementsAre(1000, 1));
  const std::vector<float> ages = Floats((*tensors)[0]);
  const auto cities = (*tensors)[1].strings();
  ASSERT_EQ(ages.size(), 1000u);
  ASSERT_EQ(cities.size(), 1000u);
  for (int r = 0; r < 1000; ++r) {
    EXPECT_EQ(ages[r], static_cast<float>(r));
    EXPECT_EQ(cities[r], std::string(r % 7 == 0 ? 5000 : 3, 'a' + r % 26));
  }
}

TEST(ReadRowsBodyTest, TheRowRouteNeedsAnObjectWithInstancesOfNamedRows) {
  EXPECT_EQ(BodyError("[[1, 2, 3, 4]]", kRowRoute, kIris),
            "the request body must be a JSON object {\"instances\": [...]}");
  EXPECT_EQ(BodyError("3", kRowRoute, kIris),
            "the request body must be a JSON object {\"instances\": [...]}");
  EXPECT_EQ(BodyError("{}", kRowRoute, kIris), "the request needs 'instances'");
  EXPECT_EQ(BodyError(R"({"instances": [[1, 2, 3, 4]], "parameters": {}})", kRowRoute, kIris),
            "the request has an unknown field 'parameters' (expected 'instances')");
  EXPECT_THAT(BodyError(R"({"instances": [[1, 2, 3, 4]]})", kRowRoute, kIris),
              HasSubstr("instances[0] must be an object {input name: value}"));
  EXPECT_EQ(BodyError(R"({"instances": {"X": [1, 2, 3, 4]}})", kRowRoute, kIris),
            "'instances' must be a list of rows");
  EXPECT_EQ(BodyError(R"({"instances": []})", kRowRoute, kIris), "'instances' is empty");
  auto tensors = ReadRowsBody(R"({"instances": [{"X": [1, 2, 3, 4]}]})", kRowRoute, kIris);
  ASSERT_TRUE(tensors.ok()) << tensors.status().ToString();
  EXPECT_THAT(Floats((*tensors)[0]), ElementsAre(1, 2, 3, 4));
}

TEST(ReadRowsBodyTest, ACloudBodyIsABareListOrOneListKeyAndParameters) {
  auto bare = ReadRowsBody("[[1, 2, 3, 4]]", kCloud, kIris);
  ASSERT_TRUE(bare.ok()) << bare.status().ToString();
  auto data = ReadRowsBody(R"({"parameters": {"a": [1]}, "data": [[1, 2, 3, 4]]})", kCloud, kIris);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(BodyError("[]", kCloud, kIris), "'rows' is empty");
  EXPECT_EQ(BodyError("[[1, 2, 3]]", kCloud, kIris),
            "rows[0] (input 'X' is FP32 [-1, 4]) has shape [3], expected [4]");
  EXPECT_EQ(BodyError(R"({"data": []})", kCloud, kIris), "'data' is empty");
  EXPECT_EQ(BodyError("\"rows\"", kCloud, kIris), "the request body must be one of them");
  EXPECT_EQ(BodyError(R"({"parameters": {}})", kCloud, kIris), "the request needs a list");
  EXPECT_EQ(BodyError(R"({"data": 5})", kCloud, kIris), "'data' must be a list of rows");
  EXPECT_EQ(BodyError(R"({"instances": [[1, 2, 3, 4]], "data": [[1, 2, 3, 4]]})", kCloud, kIris),
            "the request has both 'instances' and 'data'");
  EXPECT_EQ(BodyError(R"({"parameters": [], "data": [[1, 2, 3, 4]]})", kCloud, kIris),
            "'parameters' must be an object");
  EXPECT_EQ(BodyError(R"({"parameters": 1, "data": [[1, 2, 3, 4]]})", kCloud, kIris),
            "'parameters' must be an object");
  // Without them in the form, neither a bare list nor "parameters" is taken.
  EXPECT_EQ(BodyError("[[1, 2, 3, 4]]", kRowRoute, kIris),
            "the request body must be a JSON object {\"instances\": [...]}");
}

TEST(ReadRowsBodyTest, ErrorsComeInTheTreeReadersOrder) {
  // The body's form, in member order, before the rows; malformed JSON and a
  // repeated key, anywhere, before everything.
  EXPECT_EQ(BodyError(R"({"data": [[1]], "extra": 1, "parameters": 2})", kCloud, kIris),
            "the request has an unknown field 'extra' (expected one of them)");
  EXPECT_EQ(BodyError(R"({"parameters": 2, "extra": 1})", kCloud, kIris),
            "'parameters' must be an object");
  EXPECT_EQ(BodyError(R"({"data": 5, "extra": 1})", kCloud, kIris),
            "the request has an unknown field 'extra' (expected one of them)");
  EXPECT_EQ(BodyError(R"({"data": [[1]], "instances": [[1]]})", kCloud, kIris),
            "the request has both 'data' and 'instances'");
  for (const std::string body : {R"({"extra": 1, "data": [[1, 2, 3, 4]] )",
                                 R"({"data": [[1]], "data": [[1, 2, 3, 4]]})",
                                 R"({"instances": [{"X": [1, 2, 3, 4], "X": 1}]})",
                                 "[[1], [1, 2, 3, 4], [1, 2, 3, 4]]]"}) {
    rapidjson::Document doc;
    const Status parsed = ParseJson(body, &doc);
    ASSERT_FALSE(parsed.ok()) << body;
    EXPECT_EQ(BodyError(body, kCloud, kIris), parsed.message());
    EXPECT_EQ(BodyError(body, kRowRoute, kIris), parsed.message());
  }
}

Tensor Int64s(std::string name, std::vector<int64_t> shape, std::vector<int64_t> values) {
  Tensor t(std::move(name), DataType::kInt64, std::move(shape));
  EXPECT_TRUE(t.Allocate().ok());
  std::memcpy(t.bytes().data(), values.data(), values.size() * sizeof(int64_t));
  return t;
}

Tensor Floats(std::string name, std::vector<int64_t> shape, std::vector<float> values) {
  Tensor t(std::move(name), DataType::kFp32, std::move(shape));
  EXPECT_TRUE(t.Allocate().ok());
  std::memcpy(t.bytes().data(), values.data(), values.size() * sizeof(float));
  return t;
}

StatusOr<std::string> Predictions(const std::vector<Tensor>& outputs, int64_t rows,
                                  OutputNames names) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  RETURN_IF_ERROR(WriteRowPredictions(outputs, rows, names, &w));
  return std::string(buf.GetString(), buf.GetSize());
}

TEST(WriteRowPredictionsTest, OneOutputGivesItsValuePerRow) {
  const std::vector<Tensor> label = {Int64s("label", {3}, {0, 2, 1})};
  EXPECT_EQ(*Predictions(label, 3, OutputNames::kUnlessSingle), "[0,2,1]");
  EXPECT_EQ(*Predictions(label, 3, OutputNames::kAlways),
            R"([{"label":0},{"label":2},{"label":1}])");
  const std::vector<Tensor> column = {Floats("variable", {2, 1}, {1.5f, -2.0f})};
  EXPECT_EQ(*Predictions(column, 2, OutputNames::kUnlessSingle), "[[1.5],[-2]]");
}

TEST(WriteRowPredictionsTest, SeveralOutputsGiveAnObjectPerRow) {
  const std::vector<Tensor> outputs = {Int64s("label", {2}, {1, 0}),
                                       Floats("probabilities", {2, 2}, {0.25f, 0.75f, 1.0f, 0.0f})};
  EXPECT_EQ(*Predictions(outputs, 2, OutputNames::kUnlessSingle),
            R"([{"label":1,"probabilities":[0.25,0.75]},{"label":0,"probabilities":[1,0]}])");
}

TEST(WriteRowPredictionsTest, BytesThatAreNotUtf8AreRefusedOrBase64) {
  Tensor label("label", DataType::kBytes, {2});
  label.strings() = {"ok", std::string("\xff", 1)};
  const std::vector<Tensor> outputs = {label};
  auto refused = Predictions(outputs, 2, OutputNames::kAlways);
  EXPECT_EQ(refused.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(refused.status().message(),
            "output 'label' holds a BYTES element that is not valid UTF-8 (flat index 1), which "
            "a JSON string cannot carry; " + std::string(kRowsBinaryRemedy));

  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  ASSERT_TRUE(WriteRowPredictions(outputs, 2, OutputNames::kAlways, &w,
                                  BytesEncoding::kTextOrBase64).ok());
  EXPECT_EQ(std::string(buf.GetString(), buf.GetSize()),
            R"([{"label":"ok"},{"label":{"b64":"/w=="}}])");
}

TEST(WriteRowPredictionsTest, AnOutputWithoutOneEntryPerRowIsRefused) {
  const std::vector<Tensor> outputs = {Int64s("label", {2}, {1, 0}), Int64s("count", {}, {2})};
  auto written = Predictions(outputs, 2, OutputNames::kAlways);
  EXPECT_EQ(written.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(written.status().message(), HasSubstr("output 'count' has shape []"));
}

}  // namespace
}  // namespace berth::http
