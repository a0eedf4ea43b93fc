#include "server/http/content_encoding.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <string>

namespace berth::http {
namespace {

using ::testing::HasSubstr;

// Compresses with zlib; window_bits 31 = gzip, 15 = zlib, -15 = raw deflate.
std::string Compress(const std::string& in, int window_bits) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, in.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

const std::string kBody = R"({"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]})";

TEST(ContentEncodingTest, GzipZlibAndRawDeflateDecode) {
  for (auto [encoding, bits] : {std::pair{"gzip", 31}, {"GZIP", 31}, {"x-gzip", 31},
                                {"deflate", 15}, {"deflate", -15}}) {
    std::string body = Compress(kBody, bits);
    ASSERT_NE(body, kBody);
    ASSERT_TRUE(DecodeBody(encoding, 1 << 20, &body).ok()) << encoding << " " << bits;
    EXPECT_EQ(body, kBody) << encoding << " " << bits;
  }
}

TEST(ContentEncodingTest, IdentityAndEmptyLeaveTheBody) {
  for (const char* encoding : {"", "identity"}) {
    std::string body = kBody;
    ASSERT_TRUE(DecodeBody(encoding, 1 << 20, &body).ok());
    EXPECT_EQ(body, kBody);
  }
}

TEST(ContentEncodingTest, UnsupportedEncodingsAreNamed) {
  EXPECT_FALSE(IsSupportedEncoding("br"));
  EXPECT_FALSE(IsSupportedEncoding("gzip, br"));
  std::string body = kBody;
  const Status s = DecodeBody("br", 1 << 20, &body);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'br'"));
}

TEST(ContentEncodingTest, CorruptAndTruncatedStreamsAreInvalidArgument) {
  std::string corrupt = "not gzip at all";
  EXPECT_EQ(DecodeBody("gzip", 1 << 20, &corrupt).code(), Status::Code::kInvalidArgument);
  std::string truncated = Compress(kBody, 31);
  truncated.resize(truncated.size() / 2);
  const Status s = DecodeBody("gzip", 1 << 20, &truncated);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("compressed request body"));
}

TEST(ContentEncodingTest, ExpansionPastTheLimitIsRefused) {
  // 8 MiB of zeros compress to a few KiB: a body under the limit on the wire
  // must not expand past it.
  std::string bomb = Compress(std::string(8 << 20, '\0'), 31);
  ASSERT_LT(bomb.size(), 64u << 10);
  const Status s = DecodeBody("gzip", 1 << 20, &bomb);
  EXPECT_EQ(s.code(), Status::Code::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("1048576"));
}

TEST(ContentEncodingTest, GzipMembersAreAllDecoded) {
  // `cat a.gz b.gz` is a valid gzip file; gzip -d yields both parts.
  const std::string first = kBody.substr(0, 30), second = kBody.substr(30);
  std::string body = Compress(first, 31) + Compress(second, 31);
  ASSERT_TRUE(DecodeBody("gzip", 1 << 20, &body).ok());
  EXPECT_EQ(body, kBody);
  std::string with_empty = Compress("", 31) + Compress(kBody, 31) + Compress("", 31);
  ASSERT_TRUE(DecodeBody("x-gzip", 1 << 20, &with_empty).ok());
  EXPECT_EQ(with_empty, kBody);
}

TEST(ContentEncodingTest, GzipMembersShareOneLimit) {
  // Each member alone fits the limit; together they do not.
  const std::string half(600 << 10, 'x');
  std::string body = Compress(half, 31) + Compress(half, 31);
  const Status s = DecodeBody("gzip", 1 << 20, &body);
  EXPECT_EQ(s.code(), Status::Code::kResourceExhausted);
}

TEST(ContentEncodingTest, ATruncatedLaterMemberIsInvalidArgument) {
  std::string second = Compress(kBody, 31);
  std::string body = Compress(kBody, 31) + second.substr(0, second.size() - 3);
  EXPECT_EQ(DecodeBody("gzip", 1 << 20, &body).code(), Status::Code::kInvalidArgument);
}

TEST(ContentEncodingTest, BytesAfterTheStreamAreRefused) {
  for (auto [encoding, bits] : {std::pair{"gzip", 31}, {"deflate", 15}, {"deflate", -15}}) {
    for (const std::string& junk : {std::string("x"), std::string(8, '\0'), std::string("\x1f"),
                                   std::string("{\"inputs\": []}")}) {
      std::string body = Compress(kBody, bits) + junk;
      const Status s = DecodeBody(encoding, 1 << 20, &body);
      EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << encoding << " " << bits;
      if (bits != -15) {
        EXPECT_THAT(s.message(), HasSubstr(std::to_string(junk.size()) + " bytes after the end"))
            << encoding << " " << bits;
      }
    }
  }
}

TEST(ContentEncodingTest, DeflateIsOneStreamNotMembers) {
  std::string zlib_twice = Compress(kBody, 15) + Compress(kBody, 15);
  EXPECT_EQ(DecodeBody("deflate", 1 << 20, &zlib_twice).code(), Status::Code::kInvalidArgument);
  std::string gzip_twice = Compress(kBody, 31) + Compress(kBody, 31);
  EXPECT_EQ(DecodeBody("deflate", 1 << 20, &gzip_twice).code(), Status::Code::kInvalidArgument);
}

TEST(ContentEncodingTest, ARawDeflateBombIsResourceExhausted) {
  std::string bomb = Compress(std::string(8 << 20, '\0'), -15);
  EXPECT_EQ(DecodeBody("deflate", 1 << 20, &bomb).code(), Status::Code::kResourceExhausted);
}

TEST(ContentEncodingTest, EmptyCompressedBodyIsInvalidArgument) {
  std::string empty;
  EXPECT_EQ(DecodeBody("gzip", 1 << 20, &empty).code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace berth::http
