#include "core/float16.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace berth {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

uint16_t Bits(float f) { return FloatToHalf(f); }

TEST(Float16Test, ExactValues) {
  EXPECT_EQ(Bits(0.0f), 0x0000);
  EXPECT_EQ(Bits(-0.0f), 0x8000);
  EXPECT_EQ(Bits(1.0f), 0x3c00);
  EXPECT_EQ(Bits(-2.0f), 0xc000);
  EXPECT_EQ(Bits(0.5f), 0x3800);
  EXPECT_EQ(Bits(65504.0f), 0x7bff);  // the largest finite half
  EXPECT_EQ(Bits(std::ldexp(1.0f, -14)), 0x0400);  // the smallest normal half

  EXPECT_EQ(HalfToFloat(0x3c00), 1.0f);
  EXPECT_EQ(HalfToFloat(0xc000), -2.0f);
  EXPECT_EQ(HalfToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(HalfToFloat(0x3555), 0.333251953125f);
  EXPECT_TRUE(std::signbit(HalfToFloat(0x8000)));
  EXPECT_EQ(HalfToFloat(0x8000), 0.0f);
}

TEST(Float16Test, Subnormals) {
  const float smallest = std::ldexp(1.0f, -24);
  EXPECT_EQ(Bits(smallest), 0x0001);
  EXPECT_EQ(HalfToFloat(0x0001), smallest);
  EXPECT_EQ(Bits(1023 * smallest), 0x03ff);  // the largest subnormal
  EXPECT_EQ(HalfToFloat(0x03ff), 1023 * smallest);
  EXPECT_EQ(HalfToFloat(0x0200), 512 * smallest);
  EXPECT_EQ(HalfToFloat(0x8001), -smallest);
  EXPECT_EQ(Bits(-3 * smallest), 0x8003);
}

TEST(Float16Test, UnderflowRoundsToNearestEven) {
  const float smallest = std::ldexp(1.0f, -24);
  // Half of the smallest subnormal is a tie between 0 and 1: even wins.
  EXPECT_EQ(Bits(smallest / 2), 0x0000);
  EXPECT_EQ(Bits(-smallest / 2), 0x8000);
  // Just above that tie rounds up.
  EXPECT_EQ(Bits(std::nextafter(smallest / 2, 1.0f)), 0x0001);
  EXPECT_EQ(Bits(smallest / 4), 0x0000);
  EXPECT_EQ(Bits(std::numeric_limits<float>::denorm_min()), 0x0000);
  // Ties between subnormals: 1.5 -> 2, 2.5 -> 2.
  EXPECT_EQ(Bits(1.5f * smallest), 0x0002);
  EXPECT_EQ(Bits(2.5f * smallest), 0x0002);
  // The tie above the largest subnormal carries into the smallest normal.
  EXPECT_EQ(Bits(1023.5f * smallest), 0x0400);
}

TEST(Float16Test, NormalRoundsToNearestEven) {
  const float ulp = std::ldexp(1.0f, -10);  // half's spacing in [1, 2)
  EXPECT_EQ(Bits(1.0f + ulp / 2), 0x3c00);                 // tie, 0x3c00 is even
  EXPECT_EQ(Bits(1.0f + 3 * ulp / 2), 0x3c02);             // tie, 0x3c02 is even
  EXPECT_EQ(Bits(std::nextafter(1.0f + ulp / 2, 2.0f)), 0x3c01);  // above the tie
  EXPECT_EQ(Bits(std::nextafter(1.0f + ulp / 2, 0.0f)), 0x3c00);  // below the tie
  EXPECT_EQ(Bits(2.0f - ulp / 4), 0x4000);  // rounding carries into the exponent
  EXPECT_EQ(Bits(0.1f), 0x2e66);
}

TEST(Float16Test, OverflowToInfinity) {
  EXPECT_EQ(Bits(65519.0f), 0x7bff);    // below the tie with 65536
  EXPECT_EQ(Bits(65520.0f), 0x7c00);    // the tie rounds to even: infinity
  EXPECT_EQ(Bits(1e10f), 0x7c00);
  EXPECT_EQ(Bits(-1e10f), 0xfc00);
  EXPECT_EQ(Bits(std::numeric_limits<float>::max()), 0x7c00);
}

TEST(Float16Test, InfinityAndNan) {
  EXPECT_EQ(Bits(kInf), 0x7c00);
  EXPECT_EQ(Bits(-kInf), 0xfc00);
  EXPECT_EQ(HalfToFloat(0x7c00), kInf);
  EXPECT_EQ(HalfToFloat(0xfc00), -kInf);

  const uint16_t nan = Bits(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);  // still a NaN, not infinity
  EXPECT_TRUE(std::isnan(HalfToFloat(nan)));
  // A NaN whose payload sits only in the low float bits must not become Inf.
  const float low_payload_nan = std::bit_cast<float>(0x7f800001u);
  ASSERT_TRUE(std::isnan(low_payload_nan));
  EXPECT_TRUE(std::isnan(HalfToFloat(Bits(low_payload_nan))));
  EXPECT_EQ(Bits(-std::numeric_limits<float>::quiet_NaN()) & 0x8000, 0x8000);
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7e00)));
  EXPECT_TRUE(std::isnan(HalfToFloat(0xfc01)));
}

TEST(Float16Test, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const auto half = static_cast<uint16_t>(h);
    const float f = HalfToFloat(half);
    if ((half & 0x7c00) == 0x7c00 && (half & 0x03ff) != 0) {
      EXPECT_TRUE(std::isnan(f)) << std::hex << h;
      EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(f)))) << std::hex << h;
      continue;
    }
    ASSERT_EQ(FloatToHalf(f), half) << "half 0x" << std::hex << h << " -> " << f;
  }
}

#if defined(__FLT16_MANT_DIG__)
// The compiler's own float -> _Float16 conversion rounds to nearest even too;
// compare on a stride through every float bit pattern.
TEST(Float16Test, MatchesCompilerConversion) {
  for (uint64_t bits = 0; bits <= 0xffffffffu; bits += 4099) {
    const float f = std::bit_cast<float>(static_cast<uint32_t>(bits));
    if (std::isnan(f)) continue;
    const auto want = std::bit_cast<uint16_t>(static_cast<_Float16>(f));
    ASSERT_EQ(FloatToHalf(f), want) << "float bits 0x" << std::hex << bits;
  }
}
#endif

}  // namespace
}  // namespace berth
