#include "core/tensor.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <vector>

namespace berth {
namespace {

using Shape = std::vector<int64_t>;

TEST(ElementCountTest, Products) {
  EXPECT_EQ(ElementCount(Shape{}), 1);  // a scalar
  EXPECT_EQ(ElementCount(Shape{5}), 5);
  EXPECT_EQ(ElementCount(Shape{2, 3, 4}), 24);
  EXPECT_EQ(ElementCount(Shape{0, 4}), 0);
  EXPECT_EQ(ElementCount(Shape{4, 0}), 0);
}

TEST(ElementCountTest, NegativeDimensionIsMinusOne) {
  EXPECT_EQ(ElementCount(Shape{-1}), -1);
  EXPECT_EQ(ElementCount(Shape{2, -1, 3}), -1);
  EXPECT_EQ(ElementCount(Shape{0, -1}), -1);
}

TEST(ElementCountTest, OverflowIsMinusOne) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(ElementCount(Shape{kMax}), kMax);
  EXPECT_EQ(ElementCount(Shape{kMax, 1}), kMax);
  EXPECT_EQ(ElementCount(Shape{kMax, 2}), -1);
  EXPECT_EQ(ElementCount(Shape{int64_t{1} << 32, int64_t{1} << 32}), -1);
  EXPECT_EQ(ElementCount(Shape{int64_t{1} << 31, int64_t{1} << 31}), int64_t{1} << 62);
  EXPECT_EQ(ElementCount(Shape{3037000500, 3037000500}), -1);  // just over sqrt(INT64_MAX)^2
  // A zero anywhere makes the product zero, even after an overflow-size prefix.
  EXPECT_EQ(ElementCount(Shape{kMax, kMax, 0}), 0);
  EXPECT_EQ(ElementCount(Shape{kMax, kMax, -1}), -1);
  EXPECT_EQ(ElementCount(Shape{0, kMax, kMax}), 0);
}

TEST(ShapeToStringTest, Formats) {
  EXPECT_EQ(ShapeToString(Shape{}), "[]");
  EXPECT_EQ(ShapeToString(Shape{-1, 4}), "[-1, 4]");
  EXPECT_EQ(ShapeToString(Shape{7}), "[7]");
}

TEST(ShapeMatchesTest, Rules) {
  EXPECT_TRUE(ShapeMatches(Shape{2, 3}, Shape{2, 3}));
  EXPECT_TRUE(ShapeMatches(Shape{2, 3}, Shape{-1, 3}));
  EXPECT_TRUE(ShapeMatches(Shape{0, 3}, Shape{-1, 3}));
  EXPECT_TRUE(ShapeMatches(Shape{}, Shape{}));
  EXPECT_TRUE(ShapeMatches(Shape{9, 9}, Shape{-1, -1}));
  EXPECT_FALSE(ShapeMatches(Shape{2, 4}, Shape{-1, 3}));
  EXPECT_FALSE(ShapeMatches(Shape{2, 3}, Shape{3, 3}));
  EXPECT_FALSE(ShapeMatches(Shape{6}, Shape{2, 3}));      // rank differs
  EXPECT_FALSE(ShapeMatches(Shape{1, 2, 3}, Shape{2, 3}));
  EXPECT_FALSE(ShapeMatches(Shape{}, Shape{-1}));
}

TEST(TensorTest, AllocateFixedSize) {
  Tensor t("x", DataType::kFp32, {2, 3});
  ASSERT_TRUE(t.Allocate().ok());
  EXPECT_EQ(t.bytes().size(), 24u);
  EXPECT_TRUE(t.strings().empty());
  for (std::byte b : t.bytes()) EXPECT_EQ(b, std::byte{0});
  EXPECT_TRUE(t.CheckConsistent().ok());
  EXPECT_EQ(t.element_count(), 6);

  Tensor f16("h", DataType::kFp16, {5});
  ASSERT_TRUE(f16.Allocate().ok());
  EXPECT_EQ(f16.bytes().size(), 10u);
  Tensor i64("i", DataType::kInt64, {});
  ASSERT_TRUE(i64.Allocate().ok());
  EXPECT_EQ(i64.bytes().size(), 8u);  // a scalar holds one element
}

TEST(TensorTest, AllocateBytes) {
  Tensor t("s", DataType::kBytes, {3});
  ASSERT_TRUE(t.Allocate().ok());
  EXPECT_EQ(t.strings().size(), 3u);
  EXPECT_TRUE(t.bytes().empty());
  EXPECT_TRUE(t.CheckConsistent().ok());
}

TEST(TensorTest, AllocateZeroSize) {
  Tensor t("z", DataType::kInt32, {0, 4});
  ASSERT_TRUE(t.Allocate().ok());
  EXPECT_TRUE(t.bytes().empty());
  EXPECT_TRUE(t.CheckConsistent().ok());
}

TEST(TensorTest, AllocateRefusesUnknownShape) {
  Tensor t("x", DataType::kFp32, {-1, 3});
  Status s = t.Allocate();
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "tensor 'x' has an invalid shape [-1, 3]");
  Tensor big("y", DataType::kFp32, {std::numeric_limits<int64_t>::max(), 2});
  EXPECT_EQ(big.Allocate().code(), Status::Code::kInvalidArgument);
}

TEST(TensorTest, AllocateRefusesByteSizesThatOverflow) {
  // 2^61 FP64 elements are 2^64 bytes: the byte count wraps to 0 in size_t.
  Tensor t("x", DataType::kFp64, {int64_t{1} << 61});
  Status s = t.Allocate();
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "tensor 'x' of shape [2305843009213693952] is too large");
  EXPECT_TRUE(t.bytes().empty());
  // Nor may an empty buffer pass for a consistent one.
  EXPECT_EQ(t.CheckConsistent().message(),
            "tensor 'x' of shape [2305843009213693952] is too large");

  Tensor s2("s", DataType::kBytes, {int64_t{1} << 60});
  EXPECT_EQ(s2.Allocate().code(), Status::Code::kInvalidArgument);
}

TEST(TensorTest, AllocateReplacesOldData) {
  Tensor t("x", DataType::kUint8, {2});
  t.bytes() = {std::byte{1}, std::byte{2}, std::byte{3}};
  ASSERT_TRUE(t.Allocate().ok());
  EXPECT_EQ(t.bytes(), (std::vector<std::byte>{std::byte{0}, std::byte{0}}));
}

TEST(TensorTest, CheckConsistentCountsBytes) {
  Tensor t("x", DataType::kFp32, {2, 2});
  t.bytes().resize(12);
  Status s = t.CheckConsistent();
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "tensor 'x' has 12 bytes but shape [2, 2] of FP32 needs 16");
  t.bytes().resize(16);
  EXPECT_TRUE(t.CheckConsistent().ok());
}

TEST(TensorTest, CheckConsistentCountsStrings) {
  Tensor t("s", DataType::kBytes, {2});
  t.strings() = {"a"};
  Status s = t.CheckConsistent();
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "tensor 's' has 1 elements but shape [2] needs 2");
  t.strings().push_back("b");
  EXPECT_TRUE(t.CheckConsistent().ok());
}

TEST(TensorTest, CheckConsistentRefusesUnknownShape) {
  Tensor t("x", DataType::kFp32, {-1});
  EXPECT_EQ(t.CheckConsistent().message(), "tensor 'x' has an invalid shape [-1]");
}

TEST(TensorTest, TypedAccessIsLittleEndianRowMajor) {
  Tensor t("x", DataType::kInt32, {2});
  ASSERT_TRUE(t.Allocate().ok());
  t.data<int32_t>()[1] = 0x01020304;
  EXPECT_EQ(t.bytes()[4], std::byte{0x04});
  EXPECT_EQ(t.bytes()[7], std::byte{0x01});
}

}  // namespace
}  // namespace berth
