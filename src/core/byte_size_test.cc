#include "core/byte_size.h"

#include <gtest/gtest.h>

namespace berth {
namespace {

TEST(HumanBytesTest, Units) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(1024), "1.0 KiB");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(5u << 20), "5.0 MiB");
  EXPECT_EQ(HumanBytes(UINT64_MAX), "16.0 EiB");
}

TEST(ParseByteSizeTest, BytesAndSuffixes) {
  EXPECT_EQ(ParseByteSize("0").value(), 0u);
  EXPECT_EQ(ParseByteSize("12345").value(), 12345u);
  EXPECT_EQ(ParseByteSize("4K").value(), 4096u);
  EXPECT_EQ(ParseByteSize("512M").value(), 512ull << 20);
  EXPECT_EQ(ParseByteSize("512mib").value(), 512ull << 20);
  EXPECT_EQ(ParseByteSize("2GB").value(), 2ull << 30);
  EXPECT_EQ(ParseByteSize("1.5G").value(), 3ull << 29);
  EXPECT_EQ(ParseByteSize("1T").value(), 1ull << 40);
  EXPECT_EQ(ParseByteSize("18446744073709551615").value(), UINT64_MAX);
}

TEST(ParseByteSizeTest, RefusesWhatIsNotASize) {
  for (const char* text : {"", "M", "-1", "+1", "1.5", "1..5M", ".5G", "5.G", "1X", "1MM", "1 M",
                           "1Gibibyte", "18446744073709551616", "16777216T", "1e3"}) {
    StatusOr<uint64_t> parsed = ParseByteSize(text);
    EXPECT_FALSE(parsed.ok()) << text;
    if (!parsed.ok()) {
      EXPECT_NE(parsed.status().message().find("is not a size"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace berth
