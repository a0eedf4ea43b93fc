#include "net/http_client.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <unistd.h>

#include "net/tls_testing.h"

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

class ClientCertificateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("berth_http_client_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    const PemPair mine = SelfSigned("client"), other = SelfSigned("other");
    cert_ = Write("cert.pem", mine.cert);
    key_ = Write("key.pem", mine.key);
    other_key_ = Write("other-key.pem", other.key);
    both_ = Write("both.pem", mine.cert + mine.key);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::filesystem::path path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }

  // A client of a port where nothing listens: a request that gets as far
  // as connecting fails with "connection refused".
  static HttpClient Client(const TlsFiles& files) {
    return HttpClient(*ParseServerUrl("https://127.0.0.1:1"), std::chrono::seconds(1), files);
  }

  std::filesystem::path dir_;
  std::string cert_, key_, other_key_, both_;
};

TEST_F(ClientCertificateTest, LoadsACertificateAndItsKey) {
  EXPECT_TRUE(Client({.ca_file = "", .cert_file = cert_, .key_file = key_}).tls_status().ok())
      << Client({.ca_file = "", .cert_file = cert_, .key_file = key_}).tls_status().message();
  // The key in the certificate's own file, as berth-py's --cert takes it.
  EXPECT_TRUE(Client({.ca_file = "", .cert_file = both_, .key_file = ""}).tls_status().ok());
}

TEST_F(ClientCertificateTest, AKeyOfAnotherCertificateIsSaidBeforeConnecting) {
  HttpClient client = Client({.ca_file = "", .cert_file = cert_, .key_file = other_key_});
  ASSERT_FALSE(client.tls_status().ok());
  EXPECT_EQ(client.tls_status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(client.tls_status().message().find("'" + other_key_ +
                                               "' does not match the certificate '" + cert_ + "'"),
            std::string::npos)
      << client.tls_status().message();
  // Every request fails with it, without trying to connect.
  EXPECT_EQ(client.Get("/").status().message(), client.tls_status().message());
}

TEST_F(ClientCertificateTest, UnusableFilesAreNamedWithTheReason) {
  const std::string missing = (dir_ / "missing.pem").string();
  const struct {
    TlsFiles files;
    std::string says;
  } cases[] = {
      {{.ca_file = "", .cert_file = missing, .key_file = key_},
       "cannot load the client certificate '" + missing + "': No such file or directory"},
      {{.ca_file = "", .cert_file = cert_, .key_file = missing},
       "cannot load the client key '" + missing + "': No such file or directory"},
      {{.ca_file = "", .cert_file = key_, .key_file = key_}, "no PEM certificate"},
      {{.ca_file = "", .cert_file = cert_, .key_file = ""}, "no PEM private key"},
      {{.ca_file = "", .cert_file = cert_, .key_file = cert_}, "no PEM private key"},
      {{.ca_file = "", .cert_file = "", .key_file = key_}, "goes with a client certificate"},
  };
  for (const auto& c : cases) {
    const Status status = Client(c.files).tls_status();
    EXPECT_EQ(status.code(), Status::Code::kInvalidArgument) << c.says;
    EXPECT_NE(status.message().find(c.says), std::string::npos)
        << c.says << " in: " << status.message();
  }
  // Plain http reads no TLS files.
  EXPECT_TRUE(HttpClient(*ParseServerUrl("http://127.0.0.1:1"), std::chrono::seconds(1),
                         TlsFiles{.ca_file = "", .cert_file = missing, .key_file = ""})
                  .tls_status()
                  .ok());
}

TEST(TlsFilesOrDefaultTest, FlagsFirstThenTheEnvironment) {
  ::setenv("BERTH_CA_FILE", "env-ca.pem", 1);
  ::setenv("BERTH_CERT_FILE", "env-cert.pem", 1);
  ::setenv("BERTH_KEY_FILE", "env-key.pem", 1);
  StatusOr<TlsFiles> files = TlsFilesOrDefault({});
  ASSERT_TRUE(files.ok()) << files.status().message();
  EXPECT_EQ(files->ca_file, "env-ca.pem");
  EXPECT_EQ(files->cert_file, "env-cert.pem");
  EXPECT_EQ(files->key_file, "env-key.pem");
  // --cert replaces the pair: its key is in its own file, not $BERTH_KEY_FILE.
  files = TlsFilesOrDefault({.ca_file = "ca.pem", .cert_file = "cert.pem", .key_file = ""});
  ASSERT_TRUE(files.ok());
  EXPECT_EQ(files->ca_file, "ca.pem");
  EXPECT_EQ(files->cert_file, "cert.pem");
  EXPECT_EQ(files->key_file, "");
  EXPECT_FALSE(TlsFilesOrDefault({.ca_file = "", .cert_file = "", .key_file = "k.pem"}).ok());
  ::unsetenv("BERTH_CERT_FILE");
  files = TlsFilesOrDefault({});
  ASSERT_FALSE(files.ok());
  EXPECT_NE(files.status().message().find("$BERTH_KEY_FILE goes with $BERTH_CERT_FILE"),
            std::string::npos);
  ::unsetenv("BERTH_KEY_FILE");
  ::unsetenv("BERTH_CA_FILE");
  files = TlsFilesOrDefault({});
  ASSERT_TRUE(files.ok());
  EXPECT_EQ(files->ca_file + files->cert_file + files->key_file, "");
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
