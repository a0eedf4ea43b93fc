#include "net/tls_stream.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/ssl/error.hpp>

#include <algorithm>
#include <climits>
#include <cstring>
#include <new>

namespace berth::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;

// One socket read's room: a whole TLS record (16 KiB of data and its
// framing) fits.
constexpr size_t kInputChunk = 17 * 1024;

// Empties the thread's OpenSSL error queue, as an I/O call needs before it
// (SSL_get_error reads the queue). ERR_clear_error resets every slot of the
// queue, several hundred instructions; peeking first costs a few when the
// queue is already empty, as it is between requests.
void ClearErrors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

// The failure of an OpenSSL call that returned `ret`: OpenSSL's own reason
// where it queued one, else a truncation (nothing else fails in a BIO that
// never fails).
beast::error_code SslError(SSL* ssl, int ret) {
  const int kind = SSL_get_error(ssl, ret);
  if (kind == SSL_ERROR_ZERO_RETURN) return asio::error::eof;
  if (const unsigned long code = ERR_get_error(); code != 0) {
    ClearErrors();
    return beast::error_code(static_cast<int>(code), asio::error::get_ssl_category());
  }
  return asio::ssl::error::stream_truncated;
}

}  // namespace

// The BIO between OpenSSL and the stream's two buffers: OpenSSL reads the
// ciphertext the socket delivered from in_ and writes its records to out_.
// Reading an empty in_ asks for a retry (OpenSSL then reports
// SSL_ERROR_WANT_READ, and the operation reads the socket); writing never
// fails.
class TlsStream::Bio {
 public:
  static BIO* New(TlsStream* stream) {
    BIO* bio = BIO_new(Method());
    if (bio == nullptr) throw std::bad_alloc();
    BIO_set_data(bio, stream);
    BIO_set_init(bio, 1);
    return bio;
  }

 private:
  static const BIO_METHOD* Method() {
    static const BIO_METHOD* const method = [] {
      BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "berth tls stream");
      if (m == nullptr) throw std::bad_alloc();
      BIO_meth_set_read_ex(m, &Read);
      BIO_meth_set_write_ex(m, &Write);
      BIO_meth_set_ctrl(m, &Ctrl);
      return m;
    }();
    return method;
  }

  static TlsStream* Stream(BIO* bio) { return static_cast<TlsStream*>(BIO_get_data(bio)); }

  static int Read(BIO* bio, char* out, size_t size, size_t* read) {
    BIO_clear_retry_flags(bio);
    beast::flat_buffer& in = Stream(bio)->in_;
    if (in.size() == 0) {
      BIO_set_retry_read(bio);
      *read = 0;
      return 0;
    }
    const size_t n = std::min(size, in.size());
    std::memcpy(out, in.data().data(), n);
    in.consume(n);
    *read = n;
    return 1;
  }

  static int Write(BIO* bio, const char* data, size_t size, size_t* written) {
    BIO_clear_retry_flags(bio);
    beast::flat_buffer& out = Stream(bio)->out_;
    out.commit(asio::buffer_copy(out.prepare(size), asio::const_buffer(data, size)));
    *written = size;
    return 1;
  }

  static long Ctrl(BIO* bio, int cmd, long, void*) {
    switch (cmd) {
      case BIO_CTRL_FLUSH:
        return 1;
      case BIO_CTRL_PENDING:
        return static_cast<long>(std::min<size_t>(Stream(bio)->in_.size(), LONG_MAX));
      case BIO_CTRL_WPENDING:
        return static_cast<long>(std::min<size_t>(Stream(bio)->out_.size(), LONG_MAX));
      default:
        return 0;
    }
  }
};

TlsStream::TlsStream(asio::ip::tcp::socket socket, SSL_CTX* ctx) : tcp_(std::move(socket)) {
  ssl_ = SSL_new(ctx);
  if (ssl_ == nullptr) throw std::bad_alloc();
  BIO* bio = Bio::New(this);
  SSL_set_bio(ssl_, bio, bio);  // one reference, owned by ssl_
  SSL_set_accept_state(ssl_);
  // OpenSSL takes all the ciphertext there is in one BIO read, not a
  // record header and then its body.
  SSL_set_read_ahead(ssl_, 1);
}

TlsStream::~TlsStream() { SSL_free(ssl_); }

TlsStream::Step TlsStream::HandshakeStep(beast::error_code* ec) {
  ClearErrors();
  const int ret = SSL_do_handshake(ssl_);
  if (ret == 1) return Step::kDone;
  if (SSL_get_error(ssl_, ret) == SSL_ERROR_WANT_READ) return Step::kNeedInput;
  *ec = SslError(ssl_, ret);
  return Step::kDone;
}

TlsStream::Step TlsStream::ReadStep(asio::mutable_buffer buffer, size_t* n,
                                    beast::error_code* ec) {
  // Nothing buffered anywhere: the socket first (a failed SSL_read costs
  // about as much as a successful one).
  if (in_.size() == 0 && SSL_has_pending(ssl_) == 0) return Step::kNeedInput;
  ClearErrors();
  const int ret = SSL_read_ex(ssl_, buffer.data(), buffer.size(), n);
  if (ret == 1) return Step::kDone;
  if (SSL_get_error(ssl_, ret) == SSL_ERROR_WANT_READ) return Step::kNeedInput;
  *ec = SslError(ssl_, ret);
  return Step::kDone;
}

void TlsStream::WriteStep(const char* data, size_t size, beast::error_code* ec) {
  ClearErrors();
  size_t written = 0;
  // The BIO takes everything, so a write either completes or fails for good.
  const int ret = SSL_write_ex(ssl_, data, size, &written);
  if (ret != 1) *ec = SslError(ssl_, ret);
}

void TlsStream::ShutdownStep() {
  ClearErrors();
  // Before the handshake finished there is nothing to close (OpenSSL
  // refuses); either way the caller closes the socket next.
  if (SSL_is_init_finished(ssl_)) SSL_shutdown(ssl_);
  ClearErrors();
}

asio::mutable_buffer TlsStream::PrepareInput() { return in_.prepare(kInputChunk); }

beast::error_code TlsStream::InputError(beast::error_code ec) {
  if (ec == asio::error::eof) return asio::ssl::error::stream_truncated;
  return ec;
}

}  // namespace berth::net
