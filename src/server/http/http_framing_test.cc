#include "server/http/http_framing.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>

#include <string>

namespace berth::http {
namespace {

namespace bhttp = boost::beast::http;
using ::testing::HasSubstr;

// Parses a request head (through the blank line) as the transport does.
BeastRequest Head(const std::string& fields, const std::string& version = "1.1") {
  const std::string text = "POST /v2/models/m/infer HTTP/" + version + "\r\nHost: x\r\n" + fields +
                           "\r\n";
  bhttp::request_parser<bhttp::string_body> parser;
  parser.eager(false);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(text), ec);
  EXPECT_FALSE(ec) << ec.message() << " for " << text;
  EXPECT_TRUE(parser.is_header_done()) << text;
  return parser.release();
}

TEST(HttpFramingTest, ContentLengthOrChunkedAloneIsAccepted) {
  EXPECT_TRUE(CheckFraming(Head("")).ok());
  EXPECT_TRUE(CheckFraming(Head("Content-Length: 10\r\n")).ok());
  EXPECT_TRUE(CheckFraming(Head("Transfer-Encoding: chunked\r\n")).ok());
  EXPECT_TRUE(CheckFraming(Head("Transfer-Encoding: Chunked\r\n")).ok());
  EXPECT_TRUE(CheckFraming(Head("Transfer-Encoding:   chunked  \r\n")).ok());
}

TEST(HttpFramingTest, OtherTransferEncodingsAreRefusedByName) {
  for (const std::string value : {"gzip, chunked", "chunked, gzip", "identity", "gzip", "xchunked",
                                  "chunked;q=1", "chunked,"}) {
    const Status s = CheckFraming(Head("Transfer-Encoding: " + value + "\r\n"));
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << value;
    EXPECT_THAT(s.message(), HasSubstr("'" + value + "'")) << value;
  }
}

TEST(HttpFramingTest, AnIgnoredCodingBesideAContentLengthIsRefused) {
  // Beast frames this by Content-Length and ignores "xchunked".
  const Status s = CheckFraming(Head("Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n"));
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("xchunked"));
}

TEST(HttpFramingTest, SeveralTransferEncodingHeadersAreRefused) {
  // Beast takes the second as chunked and drops the first.
  const Status s =
      CheckFraming(Head("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"));
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
}

TEST(HttpFramingTest, ALongValueIsShortenedInTheMessage) {
  const std::string value(1000, 'g');
  const Status s = CheckFraming(Head("Transfer-Encoding: " + value + "\r\n"));
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_LT(s.message().size(), 200u);
  EXPECT_THAT(s.message(), HasSubstr("...'"));
}

TEST(HttpFramingTest, ExpectContinueOnlyForHttp11And100Continue) {
  EXPECT_TRUE(ExpectsContinue(Head("Expect: 100-continue\r\nContent-Length: 5\r\n")));
  EXPECT_TRUE(ExpectsContinue(Head("Expect: 100-Continue\r\nContent-Length: 5\r\n")));
  EXPECT_FALSE(ExpectsContinue(Head("Expect: 100-continue\r\nContent-Length: 5\r\n", "1.0")));
  EXPECT_FALSE(ExpectsContinue(Head("Expect: something-else\r\nContent-Length: 5\r\n")));
  EXPECT_FALSE(ExpectsContinue(Head("Content-Length: 5\r\n")));
}

}  // namespace
}  // namespace berth::http
