// A server-side TLS connection over a beast::tcp_stream, for Beast's HTTP
// reads and writes: the HTTP server's TLS sessions use it in place of
// Asio's ssl::stream.
//
// Asio's ssl::stream runs every record through a general engine: a failed
// SSL_read before each socket read, a BIO pair between OpenSSL and the
// socket (two copies each way and a BIO_ctrl round per step), and an
// operation object per engine step; Beast's flat_stream adds a layer to
// make one record of a gathered write. This stream does the same work
// directly (docs/benchmarks.md, "TLS without Asio's engine", has the
// figures):
//
//   socket --tcp_stream.async_read_some--> in_ --BIO read--> SSL_read --> caller
//   caller --(flattened)--> SSL_write --BIO write--> out_ --async_write--> socket
//
// The socket is read and written only through the tcp_stream, so its
// timeouts (expires_after) apply to the handshake, reads and writes as they
// do to a plain connection, and `beast::get_lowest_layer` finds it.
//
// One operation at a time: a read, a write, the handshake or the shutdown
// completes before the next starts (the HTTP server reads a request, then
// writes its answer). All of them run on the stream's executor. The stream
// is neither copyable nor movable: OpenSSL's BIO points at it.
#pragma once

#include <boost/asio/coroutine.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <algorithm>
#include <cstddef>
#include <string>

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace berth::net {

class TlsStream {
 public:
  using executor_type = boost::beast::tcp_stream::executor_type;
  using next_layer_type = boost::beast::tcp_stream;

  // A server side of `socket` with the certificate, key and verification of
  // `ctx` (which must outlive the stream).
  TlsStream(boost::asio::ip::tcp::socket socket, SSL_CTX* ctx);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  executor_type get_executor() noexcept { return tcp_.get_executor(); }
  boost::beast::tcp_stream& next_layer() noexcept { return tcp_; }
  SSL* native_handle() noexcept { return ssl_; }

  // The TLS handshake, as the server. Completes with (error_code).
  template <typename Handler>
  auto async_handshake(Handler&& handler);

  // Reads decrypted bytes into the first non-empty buffer of `buffers`
  // (at least one byte unless an error). The peer closing the connection
  // with close_notify gives asio::error::eof; without it,
  // asio::ssl::error::stream_truncated (as Asio's ssl::stream does).
  template <typename MutableBufferSequence, typename Handler>
  auto async_read_some(const MutableBufferSequence& buffers, Handler&& handler);

  // Encrypts and sends a prefix of `buffers` (up to kMaxWrite bytes,
  // gathered into one record where they fit one) and completes once the
  // ciphertext is sent, with the plaintext bytes consumed.
  template <typename ConstBufferSequence, typename Handler>
  auto async_write_some(const ConstBufferSequence& buffers, Handler&& handler);

  // Sends close_notify and completes once it is sent; it does not wait
  // for the peer's (the caller closes the socket next).
  template <typename Handler>
  auto async_shutdown(Handler&& handler);

  // The most plaintext one async_write_some encrypts: four full records.
  static constexpr size_t kMaxWrite = 4 * 16384;

 private:
  // What one OpenSSL call left to do.
  enum class Step {
    kDone,       // finished (or failed: see the error code)
    kNeedInput,  // OpenSSL wants more bytes from the peer
  };
  class Bio;
  template <typename Run, bool kWithSize>
  struct ExchangeOp;
  template <typename Buffers>
  struct WriteOp;
  struct ShutdownOp;

  // The OpenSSL steps, without templates (tls_stream.cc).
  Step HandshakeStep(boost::beast::error_code* ec);
  Step ReadStep(boost::asio::mutable_buffer buffer, size_t* n, boost::beast::error_code* ec);
  void WriteStep(const char* data, size_t size, boost::beast::error_code* ec);
  void ShutdownStep();

  bool HasOutput() const noexcept { return out_.size() > 0; }
  // Sends what OpenSSL wrote; `self` resumes with the result, then calls
  // OutputSent.
  template <typename Self>
  void SendOutput(Self& self) {
    boost::asio::async_write(tcp_, out_.data(), std::move(self));
  }
  // A large answer's ciphertext buffer is not kept for the connection's
  // life (an idle keep-alive connection holds only kKeptOutput).
  void OutputSent() {
    out_.consume(out_.size());
    if (out_.capacity() > kKeptOutput) out_.shrink_to_fit();
  }
  static constexpr size_t kKeptOutput = 32 * 1024;
  // Room for one socket read into in_.
  boost::asio::mutable_buffer PrepareInput();
  void CommitInput(size_t n) { in_.commit(n); }
  // A socket read's failure as the stream reports it: EOF is a truncation
  // (the peer closed without close_notify).
  static boost::beast::error_code InputError(boost::beast::error_code ec);

  boost::beast::tcp_stream tcp_;
  SSL* ssl_ = nullptr;
  boost::beast::flat_buffer in_;   // ciphertext read, not yet taken by OpenSSL
  boost::beast::flat_buffer out_;  // ciphertext OpenSSL wrote, not yet sent
  std::string scratch_;            // a gathered write's plaintext, flattened
};

// ---------------------------------------------------------------------------
// The operations. Each runs OpenSSL steps until one needs the socket, then
// waits on the tcp_stream and resumes. A result available at once is
// posted, never delivered inside the initiating call.

// Runs an OpenSSL step (`run`: Step(size_t* moved, error_code*)) until it
// is done: what OpenSSL wrote (a handshake flight, an alert, a TLS 1.3 key
// update) is sent first, and the socket is read whenever OpenSSL asks for
// input. Completes with (error_code), or with (error_code, moved) where
// kWithSize.
template <typename Run, bool kWithSize>
struct TlsStream::ExchangeOp {
  TlsStream& s;
  Run run;
  boost::asio::coroutine coro{};
  Step step = Step::kDone;
  boost::beast::error_code result{};
  size_t moved = 0;
  bool waited = false;

  template <typename Self>
  void operator()(Self& self, boost::beast::error_code ec = {}, size_t n = 0) {
    BOOST_ASIO_CORO_REENTER(coro) {
      for (;;) {
        step = run(&moved, &result);
        if (s.HasOutput()) {
          BOOST_ASIO_CORO_YIELD s.SendOutput(self);
          s.OutputSent();
          waited = true;
          if (ec && !result) result = ec;
        }
        if (result || step == Step::kDone) break;
        BOOST_ASIO_CORO_YIELD s.tcp_.async_read_some(s.PrepareInput(), std::move(self));
        waited = true;
        if (ec) {
          result = InputError(ec);
          break;
        }
        s.CommitInput(n);
      }
      if (!waited) {
        BOOST_ASIO_CORO_YIELD boost::asio::post(s.get_executor(), std::move(self));
      }
      if constexpr (kWithSize) {
        self.complete(result, result ? 0 : moved);
      } else {
        self.complete(result);
      }
    }
  }
};

template <typename Buffers>
struct TlsStream::WriteOp {
  TlsStream& s;
  Buffers buffers;
  boost::asio::coroutine coro{};
  boost::beast::error_code result{};
  size_t written = 0;

  template <typename Self>
  void operator()(Self& self, boost::beast::error_code ec = {}, size_t = 0) {
    BOOST_ASIO_CORO_REENTER(coro) {
      Encrypt();
      if (!result && s.HasOutput()) {
        BOOST_ASIO_CORO_YIELD s.SendOutput(self);
        s.OutputSent();
        result = ec;
      } else {
        BOOST_ASIO_CORO_YIELD boost::asio::post(s.get_executor(), std::move(self));
      }
      self.complete(result, result ? 0 : written);
    }
  }

  // One SSL_write for the whole prefix: a record per buffer would encrypt
  // (and frame) each small piece of a response on its own. The pieces are
  // gathered in one pass (a response's header is a dozen small buffers).
  void Encrypt() {
    s.scratch_.clear();
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers) && s.scratch_.size() < kMaxWrite; ++it) {
      const boost::asio::const_buffer piece(*it);
      s.scratch_.append(static_cast<const char*>(piece.data()),
                        std::min(piece.size(), kMaxWrite - s.scratch_.size()));
    }
    written = s.scratch_.size();
    if (written > 0) s.WriteStep(s.scratch_.data(), written, &result);
  }
};

struct TlsStream::ShutdownOp {
  TlsStream& s;
  boost::asio::coroutine coro{};
  boost::beast::error_code result{};

  template <typename Self>
  void operator()(Self& self, boost::beast::error_code ec = {}, size_t = 0) {
    BOOST_ASIO_CORO_REENTER(coro) {
      s.ShutdownStep();
      if (s.HasOutput()) {
        BOOST_ASIO_CORO_YIELD s.SendOutput(self);
        s.OutputSent();
        result = ec;
      } else {
        BOOST_ASIO_CORO_YIELD boost::asio::post(s.get_executor(), std::move(self));
      }
      self.complete(result);
    }
  }
};

template <typename Handler>
auto TlsStream::async_handshake(Handler&& handler) {
  auto run = [this](size_t*, boost::beast::error_code* ec) { return HandshakeStep(ec); };
  return boost::asio::async_compose<Handler, void(boost::beast::error_code)>(
      ExchangeOp<decltype(run), false>{*this, run}, handler, tcp_);
}

template <typename MutableBufferSequence, typename Handler>
auto TlsStream::async_read_some(const MutableBufferSequence& buffers, Handler&& handler) {
  boost::asio::mutable_buffer first;
  for (auto it = boost::asio::buffer_sequence_begin(buffers);
       it != boost::asio::buffer_sequence_end(buffers); ++it) {
    first = boost::asio::mutable_buffer(*it);
    if (first.size() > 0) break;
  }
  auto run = [this, first](size_t* n, boost::beast::error_code* ec) {
    return first.size() == 0 ? Step::kDone : ReadStep(first, n, ec);
  };
  return boost::asio::async_compose<Handler, void(boost::beast::error_code, size_t)>(
      ExchangeOp<decltype(run), true>{*this, run}, handler, tcp_);
}

template <typename ConstBufferSequence, typename Handler>
auto TlsStream::async_write_some(const ConstBufferSequence& buffers, Handler&& handler) {
  return boost::asio::async_compose<Handler, void(boost::beast::error_code, size_t)>(
      WriteOp<ConstBufferSequence>{*this, buffers}, handler, tcp_);
}

template <typename Handler>
auto TlsStream::async_shutdown(Handler&& handler) {
  return boost::asio::async_compose<Handler, void(boost::beast::error_code)>(
      ShutdownOp{*this}, handler, tcp_);
}

}  // namespace berth::net
