#include "net/http_client.h"

#include <gtest/gtest.h>

#include <string>

namespace berth::net {
namespace {

TEST(ParseServerUrlTest, TakesHostPortAndPrefix) {
  StatusOr<ServerUrl> url = ParseServerUrl("http://127.0.0.1:8000");
  ASSERT_TRUE(url.ok()) << url.status().message();
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->port, 8000);
  EXPECT_EQ(url->path_prefix, "");
  EXPECT_EQ(url->text, "http://127.0.0.1:8000");

  url = ParseServerUrl("HTTP://berth.internal/");
  ASSERT_TRUE(url.ok()) << url.status().message();
  EXPECT_EQ(url->host, "berth.internal");
  EXPECT_EQ(url->port, 80);
  EXPECT_EQ(url->path_prefix, "");

  url = ParseServerUrl("http://localhost:65535/berth/api//");
  ASSERT_TRUE(url.ok()) << url.status().message();
  EXPECT_EQ(url->port, 65535);
  EXPECT_EQ(url->path_prefix, "/berth/api");

  url = ParseServerUrl("http://[::1]:8000");
  ASSERT_TRUE(url.ok()) << url.status().message();
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 8000);
}

TEST(ParseServerUrlTest, ReadsHttpsWithItsDefaultPort) {
  StatusOr<ServerUrl> url = ParseServerUrl("https://sink.example/events");
  ASSERT_TRUE(url.ok()) << url.status().message();
  EXPECT_TRUE(url->tls);
  EXPECT_EQ(url->host, "sink.example");
  EXPECT_EQ(url->port, 443);
  EXPECT_EQ(url->path_prefix, "/events");
  url = ParseServerUrl("HTTPS://127.0.0.1:8443");
  ASSERT_TRUE(url.ok()) << url.status().message();
  EXPECT_TRUE(url->tls);
  EXPECT_EQ(url->port, 8443);
  EXPECT_FALSE(ParseServerUrl("http://127.0.0.1")->tls);
}

TEST(HttpClientTest, AnUnreadableCaFileIsSaidOnceAndFailsEveryRequest) {
  HttpClient client(*ParseServerUrl("https://127.0.0.1:1"), std::chrono::seconds(1),
                    "/nonexistent/ca.pem");
  ASSERT_FALSE(client.tls_status().ok());
  EXPECT_NE(client.tls_status().message().find("/nonexistent/ca.pem"), std::string::npos);
  EXPECT_EQ(client.Get("/").status().message(), client.tls_status().message());
  // Plain http has no CAs to read.
  EXPECT_TRUE(HttpClient(*ParseServerUrl("http://127.0.0.1:1"), std::chrono::seconds(1),
                         "/nonexistent/ca.pem")
                  .tls_status()
                  .ok());
}

TEST(ParseServerUrlTest, RefusesWhatItCannotUse) {
  const std::pair<const char*, const char*> cases[] = {
      {"127.0.0.1:8000", "expected http://"},
      {"ftp://host", "unsupported scheme"},
      {"http://", "no host"},
      {"http://:8000", "no host"},
      {"http://host:", "empty port"},
      {"http://host:0", "1 to 65535"},
      {"http://host:65536", "1 to 65535"},
      {"http://host:80x", "1 to 65535"},
      {"http://host:-1", "1 to 65535"},
      {"http://user:pw@host", "user info"},
      {"http://host/a?b=1", "query"},
      {"http://host#top", "fragment"},
      {"http://ho st", "space"},
      {"http://host\n", "control"},
      {"http://ho$t", "host name"},
      {"http://[::1", "without ']'"},
      {"http://[::1]x", "after ']'"},
      {"http://[zz]", "IPv6"},
  };
  for (const auto& [text, why] : cases) {
    StatusOr<ServerUrl> url = ParseServerUrl(text);
    ASSERT_FALSE(url.ok()) << text;
    EXPECT_EQ(url.status().code(), Status::Code::kInvalidArgument) << text;
    EXPECT_NE(url.status().message().find(why), std::string::npos)
        << text << ": " << url.status().message();
  }
}

TEST(ParseServerUrlTest, QuotesTheUrlPrintably) {
  StatusOr<ServerUrl> url = ParseServerUrl("http://a\x1b[2Jb");
  ASSERT_FALSE(url.ok());
  EXPECT_EQ(url.status().message().find('\x1b'), std::string::npos) << url.status().message();
}

TEST(EncodePathSegmentTest, KeepsUnreservedAndEscapesTheRest) {
  EXPECT_EQ(EncodePathSegment("iris_logreg-2.v1~"), "iris_logreg-2.v1~");
  EXPECT_EQ(EncodePathSegment("a b/c?d#e%f"), "a%20b%2Fc%3Fd%23e%25f");
  EXPECT_EQ(EncodePathSegment("模"), "%E6%A8%A1");
  EXPECT_EQ(EncodePathSegment(""), "");
}

TEST(HttpClientTest, RefusesHeadersThatWouldSplitTheRequest) {
  StatusOr<ServerUrl> url = ParseServerUrl("http://127.0.0.1:1");
  ASSERT_TRUE(url.ok());
  HttpClient client(*url, std::chrono::seconds(1));
  for (HttpHeaders headers : {HttpHeaders{{"X-A", "1\r\nX-Injected: 2"}},
                              HttpHeaders{{"X-A\n", "1"}}}) {
    StatusOr<HttpResponse> r = client.Post("/x", "body", "application/octet-stream", headers);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << r.status().message();
    EXPECT_NE(r.status().message().find("line break"), std::string::npos);
  }
}

}  // namespace
}  // namespace berth::net
