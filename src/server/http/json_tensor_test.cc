#include "server/http/json_tensor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iomanip>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "core/float16.h"
#include "core/tensor_testing.h"

namespace berth::http {
namespace {

using ::berth::testing::TensorValues;
using ::testing::HasSubstr;

// Parses `json` (with the front ends' flags) and fills a tensor named "x".
StatusOr<Tensor> Fill(DataType type, std::vector<int64_t> shape, const std::string& json) {
  rapidjson::Document doc;
  Status parsed = ParseJson(json, &doc);
  if (!parsed.ok()) return Status::Internal("test JSON does not parse: " + parsed.message());
  Tensor t("x", type, std::move(shape));
  RETURN_IF_ERROR(FillTensorFromJson(doc, &t));
  return t;
}

std::string FillError(DataType type, std::vector<int64_t> shape, const std::string& json) {
  auto t = Fill(type, std::move(shape), json);
  if (t.ok()) return "<filled without error>";
  EXPECT_EQ(t.status().code(), Status::Code::kInvalidArgument) << t.status().ToString();
  return t.status().message();
}

template <typename Fn>
std::string Write(Fn fn) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  fn(&w);
  return std::string(buf.GetString(), buf.GetSize());
}

std::string Flat(const Tensor& t) {
  return Write([&](JsonWriter* w) { WriteTensorData(t, w); });
}
std::string Nested(const Tensor& t) {
  return Write([&](JsonWriter* w) { WriteTensorNested(t, w); });
}

// ---- every datatype: parse a nested [2, 2] array, write it back flat -------

struct RoundTripCase {
  DataType type;
  std::string nested_in;
  std::string flat_out;
};

void PrintTo(const RoundTripCase& c, std::ostream* os) {
  *os << DataTypeName(c.type) << " " << c.nested_in;
}

class DatatypeRoundTripTest : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(DatatypeRoundTripTest, NestedInFlatOut) {
  const RoundTripCase& c = GetParam();
  auto t = Fill(c.type, {2, 2}, c.nested_in);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_TRUE(t->CheckConsistent().ok());
  EXPECT_EQ(Flat(*t), c.flat_out);
  // Writing is lossless: the written form parses to the same stored bytes.
  auto again = Fill(c.type, {4}, c.flat_out);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->bytes(), t->bytes());
  EXPECT_EQ(again->strings(), t->strings());
}

INSTANTIATE_TEST_SUITE_P(
    AllDatatypes, DatatypeRoundTripTest,
    ::testing::Values(
        RoundTripCase{DataType::kBool, "[[true,false],[false,true]]", "[true,false,false,true]"},
        RoundTripCase{DataType::kUint8, "[[0,255],[1,128]]", "[0,255,1,128]"},
        RoundTripCase{DataType::kUint16, "[[0,65535],[1,256]]", "[0,65535,1,256]"},
        RoundTripCase{DataType::kUint32, "[[0,4294967295],[1,65536]]",
                      "[0,4294967295,1,65536]"},
        RoundTripCase{DataType::kUint64, "[[0,18446744073709551615],[1,4294967296]]",
                      "[0,18446744073709551615,1,4294967296]"},
        RoundTripCase{DataType::kInt8, "[[-128,127],[0,-1]]", "[-128,127,0,-1]"},
        RoundTripCase{DataType::kInt16, "[[-32768,32767],[0,-1]]", "[-32768,32767,0,-1]"},
        RoundTripCase{DataType::kInt32, "[[-2147483648,2147483647],[0,-1]]",
                      "[-2147483648,2147483647,0,-1]"},
        RoundTripCase{DataType::kInt64,
                      "[[-9223372036854775808,9223372036854775807],[0,-1]]",
                      "[-9223372036854775808,9223372036854775807,0,-1]"},
        // FP16 stores the nearest half: 0.1 becomes 0.0999755859375, written
        // as the shortest float that reads back to it.
        RoundTripCase{DataType::kFp16, "[[0.5,-2.0],[65504,0.1]]", "[0.5,-2,65504,0.099975586]"},
        RoundTripCase{DataType::kFp32, "[[0.1,-1.5],[3.4028234663852886e38,1e-45]]",
                      "[0.1,-1.5,3.4028235e+38,1e-45]"},
        RoundTripCase{DataType::kFp64, "[[0.1,-1.5],[1e300,5e-324]]",
                      "[0.1,-1.5,1e300,5e-324]"},
        RoundTripCase{DataType::kBytes, R"([["a","b\"c"],["","\u00e9\n"]])",
                      "[\"a\",\"b\\\"c\",\"\",\"\xc3\xa9\\n\"]"}),
    [](const ::testing::TestParamInfo<RoundTripCase>& info) {
      return std::string(DataTypeName(info.param.type));
    });

TEST(JsonTensorTest, StoredValuesAreExact) {
  auto i8 = Fill(DataType::kInt8, {2}, "[-128,127]");
  ASSERT_TRUE(i8.ok());
  EXPECT_EQ(TensorValues<int8_t>(*i8), (std::vector<int8_t>{-128, 127}));
  auto u64 = Fill(DataType::kUint64, {1}, "[18446744073709551615]");
  ASSERT_TRUE(u64.ok());
  EXPECT_EQ(TensorValues<uint64_t>(*u64)[0], std::numeric_limits<uint64_t>::max());
  auto i64 = Fill(DataType::kInt64, {1}, "[-9223372036854775808]");
  ASSERT_TRUE(i64.ok());
  EXPECT_EQ(TensorValues<int64_t>(*i64)[0], std::numeric_limits<int64_t>::min());
  auto b = Fill(DataType::kBool, {2}, "[true,false]");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(TensorValues<uint8_t>(*b), (std::vector<uint8_t>{1, 0}));
  auto h = Fill(DataType::kFp16, {2}, "[1.0,-0.0]");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(TensorValues<uint16_t>(*h), (std::vector<uint16_t>{0x3c00, 0x8000}));
  auto f = Fill(DataType::kFp32, {1}, "[0.1]");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(TensorValues<float>(*f)[0], 0.1f);
  auto d = Fill(DataType::kFp64, {1}, "[0.1]");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(TensorValues<double>(*d)[0], 0.1);
  auto s = Fill(DataType::kBytes, {2}, R"(["nul\u0000inside","x"])");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->strings()[0], std::string("nul\0inside", 10));
  EXPECT_EQ(Flat(*s), R"(["nul\u0000inside","x"])");
}

TEST(JsonTensorTest, IntegersAreAcceptedForFloatTypes) {
  auto f = Fill(DataType::kFp32, {2}, "[1,-3]");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(TensorValues<float>(*f), (std::vector<float>{1.0f, -3.0f}));
  auto d = Fill(DataType::kFp64, {1}, "[9007199254740993]");  // 2^53 + 1 rounds to 2^53
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(TensorValues<double>(*d)[0], 9007199254740992.0);
}

TEST(JsonTensorTest, FlatAndNestedDataFillTheSameTensor) {
  auto flat = Fill(DataType::kInt32, {2, 3}, "[1,2,3,4,5,6]");
  auto nested = Fill(DataType::kInt32, {2, 3}, "[[1,2,3],[4,5,6]]");
  ASSERT_TRUE(flat.ok());
  ASSERT_TRUE(nested.ok());
  EXPECT_EQ(flat->bytes(), nested->bytes());
  EXPECT_EQ(TensorValues<int32_t>(*flat), (std::vector<int32_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(Nested(*flat), "[[1,2,3],[4,5,6]]");
  EXPECT_EQ(Flat(*nested), "[1,2,3,4,5,6]");
  auto deep = Fill(DataType::kInt32, {2, 1, 2}, "[[[1,2]],[[3,4]]]");
  ASSERT_TRUE(deep.ok());
  EXPECT_EQ(Nested(*deep), "[[[1,2]],[[3,4]]]");
}

TEST(JsonTensorTest, ScalarShape) {
  auto bare = Fill(DataType::kFp64, {}, "2.5");
  ASSERT_TRUE(bare.ok()) << bare.status().ToString();
  EXPECT_EQ(TensorValues<double>(*bare), std::vector<double>{2.5});
  auto wrapped = Fill(DataType::kFp64, {}, "[2.5]");
  ASSERT_TRUE(wrapped.ok());
  EXPECT_EQ(wrapped->bytes(), bare->bytes());
  EXPECT_EQ(Flat(*bare), "[2.5]");
  EXPECT_EQ(Nested(*bare), "2.5");  // rank 0 nests to the bare element
  EXPECT_EQ(FillError(DataType::kFp64, {}, "[1.0,2.0]"),
            "input 'x': shape [] needs 1 elements, but data has more");
  EXPECT_EQ(FillError(DataType::kFp64, {}, "[]"),
            "input 'x': shape [] needs 1 elements, but data has 0");
  auto one = Fill(DataType::kBytes, {1}, R"("solo")");  // a bare scalar for one element
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->strings(), std::vector<std::string>{"solo"});
}

TEST(JsonTensorTest, ZeroSizeShape) {
  auto t = Fill(DataType::kFp32, {0, 4}, "[]");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_TRUE(t->bytes().empty());
  EXPECT_EQ(Flat(*t), "[]");
  EXPECT_EQ(Nested(*t), "[]");
  auto rows = Fill(DataType::kFp32, {2, 0}, "[[],[]]");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(Nested(*rows), "[[],[]]");
  EXPECT_EQ(FillError(DataType::kFp32, {0, 4}, "[1.0]"),
            "input 'x': shape [0, 4] needs 0 elements, but data has more");
}

TEST(JsonTensorTest, CountMismatch) {
  EXPECT_EQ(FillError(DataType::kInt32, {2, 2}, "[1,2,3]"),
            "input 'x': shape [2, 2] needs 4 elements, but data has 3");
  EXPECT_EQ(FillError(DataType::kInt32, {2, 2}, "[[1,2],[3,4],[5,6]]"),
            "input 'x': shape [2, 2] needs 4 elements, but data has more");
  EXPECT_EQ(FillError(DataType::kBytes, {3}, R"(["a"])"),
            "input 'x': shape [3] needs 3 elements, but data has 1");
  EXPECT_EQ(FillError(DataType::kBool, {1}, "[]"),
            "input 'x': shape [1] needs 1 elements, but data has 0");
}

TEST(JsonTensorTest, HugeShapeWithLittleDataIsRefusedBeforeAllocating) {
  // 2^61 FP64 elements: the byte count would wrap to 0 and the first element
  // would be written past the end of an empty buffer.
  EXPECT_EQ(FillError(DataType::kFp64, {int64_t{1} << 61}, "[1.0]"),
            "input 'x': shape [2305843009213693952] needs 2305843009213693952 elements, but "
            "data has 1");
  // 4 TB of FP32 is not allocated just to find that the data is empty.
  EXPECT_EQ(FillError(DataType::kFp32, {1000000, 1000000}, "[]"),
            "input 'x': shape [1000000, 1000000] needs 1000000000000 elements, but data has 0");
  EXPECT_EQ(FillError(DataType::kBytes, {int64_t{1} << 40}, R"(["a","b"])"),
            "input 'x': shape [1099511627776] needs 1099511627776 elements, but data has 2");
}

TEST(JsonTensorTest, DeepNestingIsRefused) {
  auto nested = [](int depth) { return std::string(depth, '[') + "1" + std::string(depth, ']'); };
  EXPECT_TRUE(Fill(DataType::kInt32, {1}, nested(64)).ok());
  EXPECT_EQ(FillError(DataType::kInt32, {1}, nested(65)),
            "input 'x': data is nested deeper than 64 levels");
  EXPECT_EQ(FillError(DataType::kInt32, {1}, nested(100000)),
            "input 'x': data is nested deeper than 64 levels");
}

TEST(JsonTensorTest, WrongJsonTypePerDatatype) {
  EXPECT_EQ(FillError(DataType::kBool, {2}, "[true,1]"),
            "input 'x' is BOOL but element 1 is an integer (expected true or false)");
  EXPECT_EQ(FillError(DataType::kBool, {1}, R"(["true"])"),
            "input 'x' is BOOL but element 0 is a string (expected true or false)");
  for (DataType t : {DataType::kInt8, DataType::kInt16, DataType::kInt32, DataType::kInt64}) {
    const std::string name(DataTypeName(t));
    EXPECT_EQ(FillError(t, {1}, "[1.5]"),
              "input 'x' is " + name + " but element 0 is a number (expected an integer)");
    EXPECT_EQ(FillError(t, {1}, "[1.0]"),
              "input 'x' is " + name + " but element 0 is a number (expected an integer)");
    EXPECT_EQ(FillError(t, {1}, R"(["1"])"),
              "input 'x' is " + name + " but element 0 is a string (expected an integer)");
    EXPECT_EQ(FillError(t, {1}, "[true]"),
              "input 'x' is " + name + " but element 0 is a boolean (expected an integer)");
  }
  for (DataType t : {DataType::kUint8, DataType::kUint16, DataType::kUint32, DataType::kUint64}) {
    const std::string name(DataTypeName(t));
    EXPECT_EQ(FillError(t, {1}, "[2.5]"),
              "input 'x' is " + name +
                  " but element 0 is a number (expected a non-negative integer)");
    EXPECT_EQ(FillError(t, {1}, "[null]"),
              "input 'x' is " + name +
                  " but element 0 is null (expected a non-negative integer)");
  }
  for (DataType t : {DataType::kFp16, DataType::kFp32, DataType::kFp64}) {
    const std::string name(DataTypeName(t));
    EXPECT_EQ(FillError(t, {2}, R"([1.0,"2.0"])"),
              "input 'x' is " + name + " but element 1 is a string (expected a number)");
    EXPECT_EQ(FillError(t, {1}, "[false]"),
              "input 'x' is " + name + " but element 0 is a boolean (expected a number)");
    EXPECT_EQ(FillError(t, {1}, "[{}]"),
              "input 'x' is " + name + " but element 0 is an object (expected a number)");
  }
  EXPECT_EQ(FillError(DataType::kBytes, {2}, R"(["a",1])"),
            "input 'x' is BYTES but element 1 is an integer (expected a string)");
  EXPECT_EQ(FillError(DataType::kBytes, {1}, "[null]"),
            "input 'x' is BYTES but element 0 is null (expected a string)");
  EXPECT_EQ(FillError(DataType::kBytes, {1}, R"({"b64": "AA=="})"),
            "input 'x' is BYTES but element 0 is an object (expected a string)");
}

TEST(JsonTensorTest, IntegerOutOfRangePerDatatype) {
  struct Case {
    DataType type;
    const char* value;
  };
  const Case cases[] = {
      {DataType::kUint8, "256"},         {DataType::kUint8, "-1"},
      {DataType::kUint16, "65536"},      {DataType::kUint16, "-1"},
      {DataType::kUint32, "4294967296"}, {DataType::kUint32, "-1"},
      {DataType::kUint64, "-1"},         {DataType::kInt8, "128"},
      {DataType::kInt8, "-129"},         {DataType::kInt16, "32768"},
      {DataType::kInt16, "-32769"},      {DataType::kInt32, "2147483648"},
      {DataType::kInt32, "-2147483649"}, {DataType::kInt64, "9223372036854775808"},
  };
  for (const Case& c : cases) {
    const std::string name(DataTypeName(c.type));
    EXPECT_EQ(FillError(c.type, {2}, std::string("[0,") + c.value + "]"),
              "input 'x': element 1 (" + std::string(c.value) + ") is out of range for " + name)
        << name << " " << c.value;
  }
  // Beyond 64 bits JSON integers are read as doubles: no longer an integer.
  EXPECT_EQ(FillError(DataType::kUint64, {1}, "[18446744073709551616]"),
            "input 'x' is UINT64 but element 0 is a number (expected a non-negative integer)");
}

TEST(JsonTensorTest, NanAndInfinityLiterals) {
  auto f = Fill(DataType::kFp32, {3}, "[NaN,Infinity,-Infinity]");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  auto v = TensorValues<float>(*f);
  EXPECT_TRUE(std::isnan(v[0]));
  EXPECT_EQ(v[1], std::numeric_limits<float>::infinity());
  EXPECT_EQ(v[2], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(Flat(*f), "[NaN,Infinity,-Infinity]");

  auto d = Fill(DataType::kFp64, {2}, "[-Infinity,NaN]");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(Flat(*d), "[-Infinity,NaN]");

  auto h = Fill(DataType::kFp16, {2}, "[Infinity,NaN]");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(TensorValues<uint16_t>(*h)[0], 0x7c00);
  EXPECT_TRUE(std::isnan(HalfToFloat(TensorValues<uint16_t>(*h)[1])));
  EXPECT_EQ(Flat(*h), "[Infinity,NaN]");

  EXPECT_EQ(FillError(DataType::kInt32, {1}, "[NaN]"),
            "input 'x' is INT32 but element 0 is a number (expected an integer)");
}

TEST(JsonTensorTest, Fp32IsWrittenInShortestForm) {
  Tensor t("y", DataType::kFp32, {6});
  ASSERT_TRUE(t.Allocate().ok());
  const float values[] = {0.1f, 1.0f / 3.0f, 1e-7f, 16777216.0f, -0.0f, 1e10f};
  std::memcpy(t.bytes().data(), values, sizeof(values));
  EXPECT_EQ(Flat(t), "[0.1,0.33333334,1e-07,16777216,-0.0,1e+10]");
}

TEST(JsonTensorTest, Fp32WriteReadIsBitExact) {
  std::mt19937 rng(42);
  std::uniform_int_distribution<uint32_t> bits;
  Tensor t("y", DataType::kFp32, {1000});
  ASSERT_TRUE(t.Allocate().ok());
  for (int i = 0; i < 1000; ++i) {
    float f;
    do {
      f = std::bit_cast<float>(bits(rng));
    } while (!std::isfinite(f));
    t.data<float>()[i] = f;
  }
  auto back = Fill(DataType::kFp32, {1000}, Flat(t));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->bytes(), t.bytes());
}

TEST(JsonTensorTest, Fp64WriteReadIsBitExact) {
  std::mt19937_64 rng(7);
  Tensor t("y", DataType::kFp64, {2000});
  ASSERT_TRUE(t.Allocate().ok());
  for (int i = 0; i < 2000; ++i) {
    double d;
    do {
      d = std::bit_cast<double>(rng());
    } while (!std::isfinite(d));
    t.data<double>()[i] = d;
  }
  auto back = Fill(DataType::kFp64, {2000}, Flat(t));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  int differ = 0;
  for (int i = 0; i < 2000; ++i) {
    if (back->data<double>()[i] != t.data<double>()[i]) {
      if (++differ <= 3) {
        ADD_FAILURE() << std::setprecision(17) << "element " << i << ": wrote "
                      << t.data<double>()[i] << ", read "
                      << back->data<double>()[i];
      }
    }
  }
  EXPECT_EQ(differ, 0);
}

TEST(ParseJsonTest, NumbersAreExact) {
  rapidjson::Document doc;
  ASSERT_TRUE(ParseJson("[9.9674483243918787e-241, -1.4251008704872614e+186, 0.1, "
                        "0.30000000000000004, 5e-324, 1.7976931348623157e308]",
                        &doc)
                  .ok());
  EXPECT_EQ(doc[0].GetDouble(), 9.9674483243918787e-241);
  EXPECT_EQ(doc[1].GetDouble(), -1.4251008704872614e+186);
  EXPECT_EQ(doc[2].GetDouble(), 0.1);
  EXPECT_EQ(doc[3].GetDouble(), 0.1 + 0.2);
  EXPECT_EQ(doc[4].GetDouble(), std::numeric_limits<double>::denorm_min());
  EXPECT_EQ(doc[5].GetDouble(), std::numeric_limits<double>::max());
}

TEST(ParseJsonTest, ZerosUnderflowAndOverflow) {
  rapidjson::Document doc;
  ASSERT_TRUE(ParseJson("[0e-31, -0e-31, 0.000e5, 1e-400, -1e-400, 2e308, -0.0]", &doc).ok());
  for (int i : {0, 2}) {
    EXPECT_EQ(doc[i].GetDouble(), 0.0) << i;
    EXPECT_FALSE(std::signbit(doc[i].GetDouble())) << i;
  }
  EXPECT_EQ(doc[1].GetDouble(), 0.0);
  EXPECT_TRUE(std::signbit(doc[1].GetDouble()));
  EXPECT_EQ(doc[3].GetDouble(), 0.0);
  EXPECT_TRUE(std::signbit(doc[4].GetDouble()));
  EXPECT_EQ(doc[5].GetDouble(), std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::signbit(doc[6].GetDouble()));
}

TEST(ParseJsonTest, StringsMustBeValidUtf8) {
  rapidjson::Document doc;
  EXPECT_TRUE(ParseJson("[\"caf\xc3\xa9\", \"\\u00e9\"]", &doc).ok());
  for (const char* bad : {"[\"\xff\"]", "{\"id\": \"a\xc3\"}", "[\"\xed\xa0\x80\"]"}) {
    const Status s = ParseJson(bad, &doc);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("malformed JSON")) << bad;
  }
}

TEST(ParseJsonTest, IntegersStayIntegers) {
  rapidjson::Document doc;
  ASSERT_TRUE(ParseJson("[0, -0, 7, -7, 4294967296, 18446744073709551615, "
                        "-9223372036854775808, 18446744073709551616, 1.0, 1e2]",
                        &doc)
                  .ok());
  EXPECT_TRUE(doc[0].IsInt());
  EXPECT_TRUE(doc[1].IsInt());
  EXPECT_EQ(doc[1].GetInt(), 0);
  EXPECT_TRUE(doc[2].IsUint());
  EXPECT_EQ(doc[3].GetInt(), -7);
  EXPECT_TRUE(doc[4].IsInt64());
  EXPECT_FALSE(doc[4].IsInt());
  EXPECT_TRUE(doc[5].IsUint64());
  EXPECT_FALSE(doc[5].IsInt64());
  EXPECT_EQ(doc[5].GetUint64(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(doc[6].GetInt64(), std::numeric_limits<int64_t>::min());
  EXPECT_TRUE(doc[7].IsDouble());  // past 64 bits
  EXPECT_EQ(doc[7].GetDouble(), 18446744073709551616.0);
  EXPECT_TRUE(doc[8].IsDouble());
  EXPECT_FALSE(doc[8].IsInt64());
  EXPECT_TRUE(doc[9].IsDouble());
}

TEST(ParseJsonTest, NanAndInfinityAndOtherValues) {
  rapidjson::Document doc;
  ASSERT_TRUE(ParseJson(R"({"a": [NaN, Infinity, -Infinity, -Inf], "b": "s", "c": null,)"
                        R"( "d": true, "e": {}})",
                        &doc)
                  .ok());
  EXPECT_TRUE(std::isnan(doc["a"][0].GetDouble()));
  EXPECT_EQ(doc["a"][1].GetDouble(), std::numeric_limits<double>::infinity());
  EXPECT_EQ(doc["a"][2].GetDouble(), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(doc["a"][3].GetDouble(), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(std::string(doc["b"].GetString()), "s");
  EXPECT_TRUE(doc["c"].IsNull());
  EXPECT_TRUE(doc["d"].GetBool());
  EXPECT_TRUE(doc["e"].IsObject());
}

TEST(ParseJsonTest, MalformedGivesOffsetAndReason) {
  rapidjson::Document doc;
  Status s = ParseJson("[1, 2,", &doc);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "malformed JSON at offset 6: Invalid value.");
  EXPECT_EQ(ParseJson("[1e400]", &doc).message(),
            "malformed JSON at offset 1: Number too big to be stored in double.");
  EXPECT_EQ(ParseJson("", &doc).message(), "malformed JSON at offset 0: The document is empty.");
  EXPECT_TRUE(ParseJson(std::string(200000, '[') + std::string(200000, ']'), &doc).ok());
}

TEST(ParseJsonTest, DuplicateKeysAreRefusedAtAnyDepth) {
  rapidjson::Document doc;
  EXPECT_EQ(ParseJson(R"({"a": 1, "b": 2, "a": 3})", &doc).message(),
            "duplicate key 'a' in the JSON object ending at offset 23");
  EXPECT_EQ(ParseJson(R"([{"x": {"k": [], "k": {}}}])", &doc).message(),
            "duplicate key 'k' in the JSON object ending at offset 24");
  // Escapes are compared after decoding: "\u0061" is "a".
  EXPECT_THAT(ParseJson(R"({"a": 1, "\u0061": 2})", &doc).message(),
              HasSubstr("duplicate key 'a'"));
  // The same key in sibling or nested objects is not a duplicate.
  EXPECT_TRUE(ParseJson(R"({"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}]})", &doc).ok());
  // Objects with many keys (compared by sorting) and a very long key.
  std::string many = "{";
  for (int i = 0; i < 1000; ++i) many += "\"k" + std::to_string(i) + "\": 0,";
  EXPECT_TRUE(ParseJson(many + "\"last\": 0}", &doc).ok());
  EXPECT_THAT(ParseJson(many + "\"k500\": 1}", &doc).message(), HasSubstr("duplicate key 'k500'"));
  const std::string longkey(1000, 'z');
  EXPECT_THAT(ParseJson("{\"" + longkey + "\": 1, \"" + longkey + "\": 2}", &doc).message(),
              HasSubstr("duplicate key '" + std::string(64, 'z') + "...' in the JSON object"));
  // Deeply nested objects with one key each are fine.
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += "{\"a\":";
  deep += "1" + std::string(100000, '}');
  EXPECT_TRUE(ParseJson(deep, &doc).ok());
}

TEST(JsonTensorTest, NegativeZeroKeepsItsSign) {
  for (DataType type : {DataType::kFp16, DataType::kFp32, DataType::kFp64}) {
    auto t = Fill(type, {1}, "[-0.0]");
    ASSERT_TRUE(t.ok());
    const std::string written = Flat(*t);
    EXPECT_EQ(written, "[-0.0]") << DataTypeName(type);
    auto back = Fill(type, {1}, written);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->bytes(), t->bytes()) << DataTypeName(type);
  }
}

TEST(JsonTensorTest, WriteTensorElement) {
  auto t = Fill(DataType::kUint16, {3}, "[7,8,9]");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(Write([&](JsonWriter* w) { WriteTensorElement(*t, 2, w); }), "9");
}

TEST(JsonTensorTest, Base64EncodeIsRfc4648) {
  // RFC 4648 section 10's test vectors, and bytes that use '+' and '/'.
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode(std::string("\xfb\xff\xbf\x00", 4)), "+/+/AA==");
}

TEST(JsonTensorTest, Base64DecodeInvertsEncode) {
  for (const std::string& bytes :
       {std::string(), std::string("f"), std::string("fo"), std::string("foo"),
        std::string("foobar"), std::string("\xfb\xff\xbf\x00", 4)}) {
    auto decoded = Base64Decode(Base64Encode(bytes));
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(*decoded, bytes);
  }
  for (const char* bad : {"Zg=", "Zg==Zg==", "Z===", "Zm9*", "====", "Zm9v\n"}) {
    EXPECT_EQ(Base64Decode(bad).status().code(), Status::Code::kInvalidArgument) << bad;
  }
}

TEST(JsonTensorTest, BytesThatAreNotUtf8) {
  Tensor t("s", DataType::kBytes, {3});
  t.strings() = {"caf\xc3\xa9", std::string("\xc3", 1), std::string("a\0b", 3)};
  const Status s = CheckBytesAreText(std::span<const Tensor>(&t, 1), "ask differently");
  EXPECT_EQ(s.code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "output 's' holds a BYTES element that is not valid UTF-8 (flat index 1), which a "
            "JSON string cannot carry; ask differently");
  EXPECT_EQ(Write([&](JsonWriter* w) { WriteTensorData(t, w, BytesEncoding::kTextOrBase64); }),
            "[\"caf\xc3\xa9\",{\"b64\":\"ww==\"},\"a\\u0000b\"]");
  // kText never writes invalid JSON, even when the door's check was skipped.
  EXPECT_EQ(Write([&](JsonWriter* w) { WriteTensorData(t, w); }),
            "[\"caf\xc3\xa9\",null,\"a\\u0000b\"]");
  t.strings()[1] = "ok";
  EXPECT_TRUE(CheckBytesAreText(std::span<const Tensor>(&t, 1), "").ok());
}

TEST(JsonTensorTest, InvalidShapeIsRefused) {
  rapidjson::Document doc;
  doc.Parse("[1]");
  Tensor t("x", DataType::kInt32, {-1});
  Status s = FillTensorFromJson(doc, &t);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("invalid shape [-1]"));
}

}  // namespace
}  // namespace berth::http
