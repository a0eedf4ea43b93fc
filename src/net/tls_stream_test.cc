#include "net/tls_stream.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>

#include <array>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <optional>
#include <thread>

#include "net/tls_testing.h"

namespace berth::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

// A server context holding a throwaway certificate.
std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ServerContext() {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_server_method()),
                                                        SSL_CTX_free);
  const PemPair pem = SelfSigned("tls-stream-test");
  BIO* cert = BIO_new_mem_buf(pem.cert.data(), static_cast<int>(pem.cert.size()));
  BIO* key = BIO_new_mem_buf(pem.key.data(), static_cast<int>(pem.key.size()));
  X509* x509 = PEM_read_bio_X509(cert, nullptr, nullptr, nullptr);
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(key, nullptr, nullptr, nullptr);
  EXPECT_EQ(SSL_CTX_use_certificate(ctx.get(), x509), 1);
  EXPECT_EQ(SSL_CTX_use_PrivateKey(ctx.get(), pkey), 1);
  X509_free(x509);
  EVP_PKEY_free(pkey);
  BIO_free(cert);
  BIO_free(key);
  return ctx;
}

// A blocking OpenSSL client on its own socket: the other end of the stream
// under test, written without Asio so that it shares no code with it.
class Client {
 public:
  explicit Client(uint16_t port)
      : ctx_(SSL_CTX_new(TLS_client_method()), SSL_CTX_free), socket_(io_) {
    socket_.connect(tcp::endpoint(asio::ip::address_v4::loopback(), port));
    ssl_.reset(SSL_new(ctx_.get()));
    SSL_set_fd(ssl_.get(), socket_.native_handle());
  }

  bool Handshake() { return SSL_connect(ssl_.get()) == 1; }
  void WriteAll(const std::string& data) {
    size_t written = 0;
    ASSERT_EQ(SSL_write_ex(ssl_.get(), data.data(), data.size(), &written), 1);
    ASSERT_EQ(written, data.size());
  }
  // One SSL_read: OpenSSL returns one record's data at most.
  std::string ReadOnce(size_t max = 1 << 20) {
    std::string out(max, '\0');
    size_t n = 0;
    if (SSL_read_ex(ssl_.get(), out.data(), out.size(), &n) != 1) return {};
    out.resize(n);
    return out;
  }
  std::string ReadExactly(size_t size) {
    std::string out;
    while (out.size() < size) {
      const std::string part = ReadOnce(size - out.size());
      if (part.empty()) break;
      out += part;
    }
    return out;
  }
  int LastError(int ret) { return SSL_get_error(ssl_.get(), ret); }
  SSL* ssl() { return ssl_.get(); }
  tcp::socket& socket() { return socket_; }

 private:
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx_;
  asio::io_context io_;
  tcp::socket socket_;
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl_{nullptr, SSL_free};
};

// The server side: one TlsStream per accepted connection, on an io_context
// run by a background thread.
class TlsStreamTest : public ::testing::Test {
 protected:
  TlsStreamTest() : ctx_(ServerContext()), acceptor_(io_, {asio::ip::address_v4::loopback(), 0}) {}
  ~TlsStreamTest() override {
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  uint16_t port() const { return acceptor_.local_endpoint().port(); }

  // Accepts one connection into stream_ and runs `then` on it, on the
  // io_context's thread.
  void Serve(std::function<void(TlsStream&)> then) {
    acceptor_.async_accept([this, then](beast::error_code ec, tcp::socket s) {
      ASSERT_FALSE(ec) << ec.message();
      stream_ = std::make_unique<TlsStream>(std::move(s), ctx_.get());
      then(*stream_);
    });
    thread_ = std::thread([this] { io_.run(); });
  }

  // Serve, with the handshake first: its failure goes to `done`.
  void ServeAfterHandshake(std::promise<beast::error_code>* done,
                           std::function<void(TlsStream&)> then) {
    Serve([done, then](TlsStream& s) {
      s.async_handshake([&s, done, then](beast::error_code ec) {
        if (ec) return done->set_value(ec);
        then(s);
      });
    });
  }

  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
      asio::make_work_guard(io_)};
  tcp::acceptor acceptor_;
  std::unique_ptr<TlsStream> stream_;
  std::thread thread_;
};

std::string RandomBytes(size_t n) {
  std::mt19937 rng(42);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

// Echoes whatever it reads until the read fails, then reports the failure.
struct Echo {
  TlsStream& stream;
  std::promise<beast::error_code>* done;
  std::shared_ptr<std::array<char, 4096>> buffer = std::make_shared<std::array<char, 4096>>();

  void Read() {
    stream.async_read_some(asio::buffer(*buffer), [self = *this](beast::error_code ec, size_t n) {
      if (ec) return self.done->set_value(ec);
      asio::async_write(self.stream, asio::buffer(self.buffer->data(), n),
                        [self](beast::error_code wec, size_t) {
                          if (wec) return self.done->set_value(wec);
                          Echo(self).Read();
                        });
    });
  }
};

TEST_F(TlsStreamTest, EchoesManyRecordsBothWaysAndReadsCloseNotifyAsEof) {
  std::promise<beast::error_code> done;
  ServeAfterHandshake(&done, [&](TlsStream& s) { Echo{s, &done}.Read(); });
  Client client(port());
  ASSERT_TRUE(client.Handshake());
  // 300 KB in 50 KB writes (four records each), echoed back through the
  // server's 4 KiB reads. (One thread: an SSL object is not for two.)
  const std::string data = RandomBytes(300 * 1000);
  std::string echoed;
  for (size_t at = 0; at < data.size(); at += 50 * 1000) {
    client.WriteAll(data.substr(at, 50 * 1000));
    echoed += client.ReadExactly(50 * 1000);
  }
  EXPECT_TRUE(echoed == data) << "echoed " << echoed.size() << " bytes, not the same";
  EXPECT_GE(SSL_shutdown(client.ssl()), 0);
  auto result = done.get_future();
  ASSERT_EQ(result.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(result.get(), asio::error::eof);
}

TEST_F(TlsStreamTest, AGatheredWriteIsOneRecord) {
  std::promise<beast::error_code> done;
  static const std::string kParts[] = {"HTTP/1.1 200 OK\r\n", "Content-Length: 2\r\n\r\n", "{}"};
  ServeAfterHandshake(&done, [&](TlsStream& s) {
    const std::array<asio::const_buffer, 3> buffers = {
        asio::buffer(kParts[0]), asio::buffer(kParts[1]), asio::buffer(kParts[2])};
    s.async_write_some(buffers, [&](beast::error_code ec, size_t n) {
      EXPECT_EQ(n, kParts[0].size() + kParts[1].size() + kParts[2].size());
      done.set_value(ec);
    });
  });
  Client client(port());
  ASSERT_TRUE(client.Handshake());
  auto result = done.get_future();
  ASSERT_EQ(result.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_FALSE(result.get());
  // Everything has been sent; one SSL_read returns one record's data, so a
  // record per buffer would give the first part alone.
  EXPECT_EQ(client.ReadOnce(), kParts[0] + kParts[1] + kParts[2]);
}

TEST_F(TlsStreamTest, AClientThatLeavesWithoutCloseNotifyIsATruncation) {
  std::promise<beast::error_code> done;
  ServeAfterHandshake(&done, [&](TlsStream& s) { Echo{s, &done}.Read(); });
  {
    Client client(port());
    ASSERT_TRUE(client.Handshake());
    client.WriteAll("half a conversation");
    EXPECT_EQ(client.ReadExactly(19), "half a conversation");
  }  // the socket closes here, without close_notify
  auto result = done.get_future();
  ASSERT_EQ(result.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(result.get(), asio::ssl::error::stream_truncated);
}

TEST_F(TlsStreamTest, PlaintextInsteadOfAHandshakeFailsTheHandshakeWithOpenSslsReason) {
  std::promise<beast::error_code> done;
  Serve([&](TlsStream& s) { s.async_handshake([&](beast::error_code ec) { done.set_value(ec); }); });
  Client client(port());
  asio::write(client.socket(), asio::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
  auto result = done.get_future();
  ASSERT_EQ(result.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  const beast::error_code ec = result.get();
  EXPECT_EQ(ec.category(), asio::error::get_ssl_category()) << ec.message();
  EXPECT_NE(ec.message().find("http request"), std::string::npos) << ec.message();
}

TEST_F(TlsStreamTest, TheTcpStreamsTimeoutCutsOffAStalledHandshake) {
  std::promise<beast::error_code> done;
  Serve([&](TlsStream& s) {
    s.next_layer().expires_after(std::chrono::milliseconds(200));
    s.async_handshake([&](beast::error_code ec) { done.set_value(ec); });
  });
  Client client(port());  // connects, then says nothing
  auto result = done.get_future();
  ASSERT_EQ(result.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(result.get(), beast::error::timeout);
}

TEST_F(TlsStreamTest, ShutdownSendsCloseNotify) {
  std::promise<beast::error_code> done;
  ServeAfterHandshake(&done, [&](TlsStream& s) {
    s.async_shutdown([&](beast::error_code ec) { done.set_value(ec); });
  });
  Client client(port());
  ASSERT_TRUE(client.Handshake());
  auto result = done.get_future();
  ASSERT_EQ(result.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_FALSE(result.get());
  char byte = 0;
  size_t n = 0;
  const int ret = SSL_read_ex(client.ssl(), &byte, 1, &n);
  EXPECT_EQ(client.LastError(ret), SSL_ERROR_ZERO_RETURN);
}

}  // namespace
}  // namespace berth::net
