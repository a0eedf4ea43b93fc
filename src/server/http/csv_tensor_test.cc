#include "server/http/csv_tensor.h"
#include "core/tensor_testing.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace berth::http {
namespace {

using ::berth::testing::TensorValues;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const TensorSpec kFloat4 = {"X", DataType::kFp32, {-1, 4}};
const TensorSpec kDoubleAny = {"X", DataType::kFp64, {-1, -1}};

std::string CsvError(const std::string& body, const TensorSpec& spec) {
  auto t = ParseCsvTensor(body, spec);
  if (t.ok()) return "<no error>";
  EXPECT_EQ(t.status().code(), Status::Code::kInvalidArgument);
  return t.status().message();
}

TEST(ParseCsvTensorTest, OneRowPerLine) {
  auto t = ParseCsvTensor("5.1,3.5,1.4,0.2\n6.7, 3.0 ,5.2,+2.3\r\n \r\n", kFloat4);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->name(), "X");
  EXPECT_EQ(t->datatype(), DataType::kFp32);
  EXPECT_THAT(t->shape(), ElementsAre(2, 4));
  EXPECT_THAT(TensorValues<float>(*t), ElementsAre(5.1f, 3.5f, 1.4f, 0.2f, 6.7f, 3.0f, 5.2f, 2.3f));
}

TEST(ParseCsvTensorTest, Fp32ValuesAreReadAsJsonNumbersAre) {
  auto t = ParseCsvTensor("0.1,1e39,1e-50,-0\n", kFloat4);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  const std::vector<float> v = TensorValues<float>(*t);
  EXPECT_EQ(v[0], static_cast<float>(0.1));
  EXPECT_TRUE(std::isinf(v[1]));  // refused later by validation, as a JSON 1e39 is
  EXPECT_EQ(v[2], 0.0f);
  EXPECT_EQ(v[3], 0.0f);
}

TEST(ParseCsvTensorTest, Fp64KeepsFullPrecisionAndTakesAnyWidth) {
  auto t = ParseCsvTensor("0.1,-1e-300,12345678901234567\n\n\n", kDoubleAny);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_THAT(t->shape(), ElementsAre(1, 3));
  EXPECT_THAT(TensorValues<double>(*t), ElementsAre(0.1, -1e-300, 12345678901234567.0));
}

TEST(ParseCsvTensorTest, RefusesMalformedBodies) {
  EXPECT_THAT(CsvError("", kFloat4), HasSubstr("no rows"));
  EXPECT_THAT(CsvError("\n \n", kFloat4), HasSubstr("no rows"));
  EXPECT_THAT(CsvError("a,b,c,d\n1,2,3,4\n", kFloat4),
              HasSubstr("CSV line 1, field 1 ('a') is not a number (the body must not have a "
                        "header line)"));
  EXPECT_THAT(CsvError("1,2,3,4\n1,2,,4\n", kFloat4),
              HasSubstr("CSV line 2, field 3 ('') is not a number"));
  EXPECT_THAT(CsvError("1,2,3,4\n1,2,\"3\",4\n", kFloat4), HasSubstr("field 3"));
  EXPECT_THAT(CsvError("1,2,3,4\n1,2,3,4x\n", kFloat4), HasSubstr("field 4 ('4x')"));
  EXPECT_THAT(CsvError("1,2,3,4\n1,2,3,1e400\n", kFloat4),
              HasSubstr("field 4 ('1e400') is out of range"));
  EXPECT_THAT(CsvError("1,2,3,4\n1,2,+-3,4\n", kFloat4), HasSubstr("field 3 ('+-3')"));
  EXPECT_THAT(CsvError("1,2,3,4\n\n1,2,3,4\n", kFloat4), HasSubstr("CSV line 2 is blank"));
  EXPECT_THAT(CsvError("1,2,3\n", kFloat4),
              HasSubstr("CSV line 1 has 3 values, but input 'X' (FP32 [-1, 4]) takes 4 per row"));
  EXPECT_THAT(CsvError("1,2,3\n1,2\n", kDoubleAny),
              HasSubstr("CSV line 2 has 2 values, but line 1 has 3"));
  EXPECT_THAT(CsvError("1,2,3,4\n", {"X", DataType::kFp32, {-1, 1, 4}}),
              HasSubstr("FP32 or FP64 of shape [-1, n]"));
  EXPECT_THAT(CsvError("a\n", {"city", DataType::kBytes, {-1, 1}}),
              HasSubstr("input 'city' is BYTES [-1, 1]"));
}

TEST(ParseCsvTensorTest, RefusesJunkAfterANumber) {
  EXPECT_THAT(CsvError("1.5abc,2,3,4\n", kFloat4), HasSubstr("field 1 ('1.5abc') is not a number"));
  EXPECT_THAT(CsvError("1,2,3,4 abc\n", kFloat4), HasSubstr("field 4 ('4 abc') is not a number"));
  // NUL and control bytes are refused wherever they are, and shown escaped.
  EXPECT_THAT(CsvError(std::string("1.5\0,2,3,4\n", 11), kFloat4),
              HasSubstr("CSV line 1, field 1 ('1.5\\x00') is not a number"));
  EXPECT_THAT(CsvError(std::string("1,2,3,4\0", 8), kFloat4),
              HasSubstr("field 4 ('4\\x00') is not a number"));
  EXPECT_THAT(CsvError(std::string("1,2,3,4\n\0", 9), kFloat4),
              HasSubstr("CSV line 2, field 1 ('\\x00') is not a number"));
  EXPECT_THAT(CsvError("1,2,3,\x01" "4\n", kFloat4), HasSubstr("field 4 ('\\x014')"));
  // from_chars would read "nan(...)" as a NaN.
  EXPECT_THAT(CsvError("nan(abc),2,3,4\n", kFloat4),
              HasSubstr("field 1 ('nan(abc)') is not a number"));
  EXPECT_THAT(CsvError("1,2,3,nan()\n", kFloat4), HasSubstr("field 4 ('nan()') is not a number"));
  // The bare words are numbers (validation refuses them unless the model allows NaN).
  auto t = ParseCsvTensor("nan,inf,-Infinity,1\n", kFloat4);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_TRUE(std::isnan(TensorValues<float>(*t)[0]));
}

}  // namespace
}  // namespace berth::http
