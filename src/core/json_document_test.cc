#include "core/json_document.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace berth {
namespace {

rapidjson::Document Parse(const std::string& json) {
  rapidjson::Document doc;
  EXPECT_FALSE(ParseExactNumbers<0>(json, &doc).IsError()) << json;
  return doc;
}

// RapidJSON 1.1.0's full-precision conversion read these as 1.0e31 and
// -6.1e-269 (DiyFp::Normalize on a zero).
TEST(JsonDocumentTest, ZeroWithAnyExponentIsZero) {
  for (const char* json : {"[0e-100]", "[0e308]", "[0.000e30]", "[-0e25]", "[0E-5]"}) {
    const rapidjson::Document doc = Parse(json);
    ASSERT_TRUE(doc[0].IsDouble()) << json;
    EXPECT_EQ(doc[0].GetDouble(), 0.0) << json;
  }
}

TEST(JsonDocumentTest, NumbersKeepRapidJsonsTypesAndAreExact) {
  const rapidjson::Document doc =
      Parse(R"({"u": 7, "big": 18446744073709551615, "neg": -7, "neg64": -9223372036854775808,)"
            R"( "huge": 18446744073709551616, "d": 0.1, "e": 1.7976931348623157e308,)"
            R"( "tiny": 1e-400, "s": "12", "a": [true, null]})");
  EXPECT_TRUE(doc["u"].IsUint());
  EXPECT_EQ(doc["u"].GetInt(), 7);
  EXPECT_EQ(doc["big"].GetUint64(), UINT64_MAX);
  EXPECT_EQ(doc["neg"].GetInt(), -7);
  EXPECT_EQ(doc["neg64"].GetInt64(), INT64_MIN);
  EXPECT_TRUE(doc["huge"].IsDouble());
  EXPECT_EQ(doc["huge"].GetDouble(), 18446744073709551616.0);
  EXPECT_EQ(doc["d"].GetDouble(), 0.1);
  EXPECT_EQ(doc["e"].GetDouble(), 1.7976931348623157e308);
  EXPECT_EQ(doc["tiny"].GetDouble(), 0.0);
  EXPECT_TRUE(doc["s"].IsString());
  EXPECT_TRUE(doc["a"][0].GetBool());
}

TEST(JsonDocumentTest, ErrorsAreReported) {
  rapidjson::Document doc;
  EXPECT_TRUE(ParseExactNumbers<0>("[1e400]", &doc).IsError());
  EXPECT_TRUE(ParseExactNumbers<0>("[1,", &doc).IsError());
  const rapidjson::ParseResult r = ParseExactNumbers<0>("{\"a\": x}", &doc);
  EXPECT_TRUE(r.IsError());
  EXPECT_EQ(r.Offset(), 6u);
}

}  // namespace
}  // namespace berth
