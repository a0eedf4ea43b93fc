#include "server/http/http_server.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "core/logging.h"
#include "core/scheduler.h"
#include "net/tls_stream.h"
#include "server/http/content_encoding.h"
#include "server/http/http_framing.h"
#include "server/log_limiter.h"
#include "server/pending_replies.h"
#include "server/refusal_log.h"
#include "server/tls/tls_config.h"

namespace berth::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

// Decodes %XX escapes in a URL path; false on a malformed escape.
bool PercentDecode(std::string_view in, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size() || !std::isxdigit(static_cast<unsigned char>(in[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      return false;
    }
    out->push_back(static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16)));
    i += 2;
  }
  return true;
}

// The first accept() failure after a success pauses accepting this long;
// each further one doubles the pause, up to kMaxAcceptPause.
constexpr std::chrono::milliseconds kMinAcceptPause{10};
constexpr std::chrono::milliseconds kMaxAcceptPause{1000};
// A repeating accept() failure or refusal is logged at most once per interval.
constexpr std::chrono::seconds kAcceptLogInterval{5};
// After an error answered without reading the body, the connection reads and
// drops what the client still sends for at most this long before closing, so
// that closing with unread data (a TCP reset) does not destroy the answer
// before the client has read it.
constexpr std::chrono::seconds kLingerTime{2};
// How long a TLS close may take to send its close_notify.
constexpr std::chrono::seconds kTlsShutdownTime{1};
// What an idle keep-alive connection's first read takes at most; the header
// read that follows parses it first.
constexpr size_t kFirstRead = 4096;

// How long the 503 answers sent when the shutdown grace period ends have to
// be written before the connections are closed (Stop goes on as soon as they
// are).
constexpr std::chrono::seconds kCancelledReplyTime{3};

// What the server's shared state knows of a connection: it can be answered.
class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  virtual ~SessionBase() = default;
  // Sends the answer to the request handed to the router; from any thread.
  virtual void Reply(HttpResponse r) = 0;
};

struct Shared {
  const Router* router;
  HttpServerOptions options;
  std::atomic<int64_t> in_flight{0};
  std::atomic<bool> stopping{false};
  std::atomic<int64_t> connections{0};
  // True while the acceptor waits out a pause; a closing connection then
  // calls wake_acceptor (set before the first connection) to resume at once.
  std::atomic<bool> accept_paused{false};
  std::function<void()> wake_acceptor;
  // The requests handed to the router and not yet answered.
  PendingReplies<std::shared_ptr<SessionBase>> replies;
};

HttpResponse Busy(const Shared& shared) {
  return ErrorResponse(Status::Unavailable(
      "the server is at its limit of " +
      std::to_string(shared.options.inflight_budget->capacity()) +
      " bytes held by requests in flight; retry later"));
}

// One connection: plain (`Stream` = beast::tcp_stream) or TLS
// (net::TlsStream, over a beast::tcp_stream); the two differ only in the
// handshake and the close.
template <typename Stream>
class Session final : public SessionBase {
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

 public:
  Session(tcp::socket socket, Shared* shared) requires(!kTls)
      : stream_(std::move(socket)), shared_(shared) {
    Init();
  }
  // `tls` is the context the connection keeps for its life, whatever a
  // reload does meanwhile.
  Session(tcp::socket socket, Shared* shared, std::shared_ptr<asio::ssl::context> tls)
    requires(kTls)
      : tls_(std::move(tls)), stream_(std::move(socket), tls_->native_handle()), shared_(shared) {
    Init();
  }

  ~Session() override {
    --shared_->connections;
    if (shared_->accept_paused && !shared_->stopping) shared_->wake_acceptor();
  }

  void Start() {
    asio::dispatch(stream_.get_executor(), [self = Self()] {
      if constexpr (kTls) {
        self->Handshake();
      } else {
        self->Read();
      }
    });
  }

  void Reply(HttpResponse r) override {
    asio::dispatch(stream_.get_executor(), [self = Self(), r = std::move(r)]() mutable {
      self->Send(std::move(r));
    });
  }

 private:
  void Init() {
    ++shared_->connections;
    // The peer's address, once per connection: the admin checks read it.
    beast::error_code peer_ec;
    const tcp::endpoint remote = Tcp().socket().remote_endpoint(peer_ec);
    if (!peer_ec) peer_ = remote.address().to_string();
    on_chunk_header_ = [this](uint64_t size, beast::string_view, beast::error_code& ec) {
      if (!Reserve(size)) {
        over_budget_ = true;
        ec = boost::system::errc::make_error_code(boost::system::errc::no_buffer_space);
      }
    };
  }

  beast::tcp_stream& Tcp() { return beast::get_lowest_layer(stream_); }
  std::shared_ptr<Session> Self() {
    return std::static_pointer_cast<Session>(shared_from_this());
  }

  // A client that does not finish its handshake within the header timeout
  // (or sends plaintext to a TLS port) is closed.
  void Handshake() {
    Tcp().expires_after(shared_->options.header_timeout);
    stream_.async_handshake([self = Self()](beast::error_code ec) {
                              if (ec == beast::error::timeout) {
                                self->Count(&ConnectionCounters::header_timeouts);
                              }
                              if (ec) return self->Tcp().close();
                              self->Read();
                            });
  }

  // The connection's first request must have its header whole within the
  // header timeout of the accept (after the TLS handshake); a later one may
  // wait the idle timeout for its first byte, then has the header timeout
  // for the rest. Either way a client sending a byte now and then (slowloris)
  // is closed once the header timeout passes, and holds no thread meanwhile.
  void Read() {
    request_ = HttpRequest{};
    preauthorized_.authorized = false;
    preauthorized_.model.clear();
    over_budget_ = false;
    upload_parser_.reset();
    upload_.reset();
    parser_.emplace();
    // The body limit is set once the header says where the body goes
    // (OnHeader): a push streams to disk under its own limit. (Not
    // boost::none: Beast compares the length with the optional, and none
    // is less than any length.)
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    parser_->header_limit(shared_->options.max_header_bytes);
    parser_->on_chunk_header(on_chunk_header_);
    if (!served_one_ || buffer_.size() > 0) return ReadHeader();
    phase_ = Phase::kIdle;
    Tcp().expires_after(shared_->options.idle_timeout);
    stream_.async_read_some(buffer_.prepare(kFirstRead),
                            [self = Self()](beast::error_code ec, size_t n) {
                              if (ec) return self->OnReadError(ec);
                              self->buffer_.commit(n);
                              self->ReadHeader();
                            });
  }

  void ReadHeader() {
    phase_ = Phase::kHeader;
    started_ = std::chrono::steady_clock::now();
    Tcp().expires_after(shared_->options.header_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = Self()](beast::error_code ec, size_t) {
                               self->OnHeader(ec);
                             });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    Status framing = CheckFraming(parser_->get());
    if (!framing.ok()) return RefuseUnread(ErrorResponse(framing));
    // With --require-auth, a body that has not arrived whole with its header
    // is read only for a client the header authorizes: a refused one is
    // answered 401/403 at once and sends it for nothing. (A body already
    // here costs nothing more; Dispatch checks that request as usual.)
    if (shared_->router->requires_auth() && !parser_->is_done()) {
      const boost::optional<uint64_t> length = parser_->content_length();
      if (!length || buffer_.size() < *length) {
        if (auto refusal = Preauthorize()) return RefuseUnread(std::move(*refusal));
      }
    }
    if (const auto& streams = shared_->options.streams_to_file; streams) {
      const auto& head = parser_->get();
      if (streams(std::string_view(head.method_string().data(), head.method_string().size()),
                  std::string_view(head.target().data(), head.target().size()))) {
        return StartUpload();
      }
    }
    const boost::optional<uint64_t> length = parser_->content_length();
    if (length && *length > shared_->options.max_body_bytes) return RefuseUnread(BodyTooLarge());
    parser_->body_limit(shared_->options.max_body_bytes);
    if (length && !Reserve(*length)) return RefuseUnread(Busy(*shared_));
    if (!parser_->is_done() && !ExpectsContinue(parser_->get())) {
      // Most bodies arrived with their header: parse what is buffered here
      // rather than through another asynchronous read.
      if (!ParseBuffered(&ec)) return OnBody(ec);
    }
    if (parser_->is_done()) return OnRequest();
    if (!ExpectsContinue(parser_->get())) return ReadBody();
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                      [self = Self()](beast::error_code ec, size_t) {
                        if (ec) return self->Close();
                        self->ReadBody();
                      });
  }

  // Feeds the bytes already read to the parser; false on a parse error (in
  // `*ec`).
  bool ParseBuffered(beast::error_code* ec) { return ParseBufferedInto(*parser_, ec); }

  template <class Parser>
  bool ParseBufferedInto(Parser& parser, beast::error_code* ec) {
    while (buffer_.size() > 0 && !parser.is_done()) {
      const size_t used = parser.put(buffer_.data(), *ec);
      if (*ec == bhttp::error::need_more) {
        ec->clear();
        break;
      }
      if (*ec) return false;
      buffer_.consume(used);
      if (used == 0) break;
    }
    return true;
  }

  // Reads the body a piece at a time. With --min-body-rate, each piece must
  // arrive before body start + the header timeout (the grace) + the bytes
  // read so far at the minimum rate: a client must keep up that rate on
  // average, however it spreads its bytes (slow body).
  void ReadBody() {
    body_start_ = std::chrono::steady_clock::now();
    body_read_ = 0;
    phase_ = Phase::kBody;
    ReadBodyPiece();
  }

  // The deadline of the body's next piece (see ReadBody).
  void SetBodyDeadline() {
    const uint64_t rate = shared_->options.min_body_rate;
    if (rate == 0) {
      Tcp().expires_after(shared_->options.idle_timeout);
    } else {
      // Bounded so the product cannot overflow: a body this large is refused
      // by the body limit long before.
      const uint64_t read = std::min<uint64_t>(body_read_, uint64_t{1} << 40);
      Tcp().expires_at(body_start_ + shared_->options.header_timeout +
                       std::chrono::microseconds(read * 1'000'000 / rate));
    }
  }

  void ReadBodyPiece() {
    SetBodyDeadline();
    bhttp::async_read_some(stream_, buffer_, *parser_,
                           [self = Self()](beast::error_code ec, size_t n) {
                             self->body_read_ += n;
                             if (ec || self->parser_->is_done()) return self->OnBody(ec);
                             self->ReadBodyPiece();
                           });
  }

  // A route whose body streams to a file (HttpServerOptions::streams_to_file,
  // a registry push): the body goes to a temporary file under upload_dir,
  // bounded by max_upload_bytes instead of max_body_bytes, and holds no
  // memory (so no in-flight budget); the handler gets the file
  // (HttpRequest::upload), removed once the request is answered.
  void StartUpload() {
    const HttpServerOptions& options = shared_->options;
    const auto& head = parser_->get();
    if (head.find(bhttp::field::content_encoding) != head.end()) {
      HttpResponse r = ErrorResponse(Status::InvalidArgument(
          "an upload is sent as it is: Content-Encoding is not supported on this route"));
      r.status = 415;
      return RefuseUnread(std::move(r));
    }
    // Who may push is known from the header: a refused client uploads nothing.
    if (!preauthorized_.authorized) {
      if (auto refusal = Preauthorize()) return RefuseUnread(std::move(*refusal));
    }
    const boost::optional<uint64_t> length = parser_->content_length();
    if (length && *length > options.max_upload_bytes) return RefuseUnread(UploadTooLarge());
    std::string path = (options.upload_dir / "upload-XXXXXX").string();
    const int fd = ::mkstemp(path.data());
    if (fd < 0) {
      return RefuseUnread(ErrorResponse(Status::Internal(
          std::string("cannot create a file for the upload: ") + std::strerror(errno))));
    }
    ::close(fd);
    const bool expects_continue = ExpectsContinue(parser_->get());
    upload_ = std::make_shared<UploadedBody>(path);
    upload_parser_.emplace(std::move(*parser_));
    upload_parser_->body_limit(options.max_upload_bytes);
    beast::error_code ec;
    upload_parser_->get().body().open(path.c_str(), beast::file_mode::write, ec);
    if (ec) {
      return RefuseUnread(ErrorResponse(Status::Internal("cannot open the upload's file: " +
                                                         ec.message())));
    }
    body_start_ = std::chrono::steady_clock::now();
    body_read_ = 0;
    phase_ = Phase::kBody;
    if (!expects_continue) {
      if (!ParseBufferedInto(*upload_parser_, &ec)) return OnUploadDone(ec);
      if (upload_parser_->is_done()) return OnUploadDone({});
      return ReadUploadPiece();
    }
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                      [self = Self()](beast::error_code ec, size_t) {
                        if (ec) return self->Close();
                        self->ReadUploadPiece();
                      });
  }

  // Authorizes the request in parser_ from its header alone
  // (Router::Preauthorize): a refusal to answer (the body unread), or
  // nothing, and then preauthorized_ says who asks, unless no route matched
  // (Dispatch then answers 404 / 405 once the body is read).
  std::optional<HttpResponse> Preauthorize() {
    const auto& head = parser_->get();
    preauthorized_ = HttpRequest{};
    preauthorized_.method = std::string(head.method_string());
    const std::string_view target(head.target().data(), head.target().size());
    if (!PercentDecode(target.substr(0, target.find('?')), &preauthorized_.path)) {
      return ErrorResponse(Status::InvalidArgument("malformed percent-escape in the URL"));
    }
    if (auto authorization = head.find(bhttp::field::authorization); authorization != head.end()) {
      preauthorized_.headers.emplace_back("authorization", std::string(authorization->value()));
    }
    preauthorized_.peer = peer_;
    return shared_->router->Preauthorize(preauthorized_);
  }

  void ReadUploadPiece() {
    SetBodyDeadline();
    bhttp::async_read_some(stream_, buffer_, *upload_parser_,
                           [self = Self()](beast::error_code ec, size_t n) {
                             self->body_read_ += n;
                             if (ec || self->upload_parser_->is_done()) {
                               return self->OnUploadDone(ec);
                             }
                             self->ReadUploadPiece();
                           });
  }

  void OnUploadDone(beast::error_code ec) {
    if (ec == bhttp::error::body_limit) return RefuseUnread(UploadTooLarge());
    if (ec) {
      // Cut off midway (or too slow): nothing was handed on; the file goes
      // with upload_.
      if (ec == beast::error::timeout && shared_->options.min_body_rate > 0) {
        Count(&ConnectionCounters::slow_bodies);
      }
      if (ec == bhttp::error::end_of_stream || ec == asio::error::operation_aborted ||
          ec == beast::error::timeout || ec == asio::error::connection_reset ||
          ec == asio::error::eof || ec == bhttp::error::partial_message) {
        return Close();
      }
      return RefuseUnread(
          ErrorResponse(Status::InvalidArgument("malformed HTTP request: " + ec.message())));
    }
    upload_parser_->get().body().close();
    OnRequestFrom(upload_parser_->get());
  }

  HttpResponse BodyTooLarge() const {
    return ErrorResponse(Status::ResourceExhausted(
        "request body is larger than the limit of " +
        std::to_string(shared_->options.max_body_bytes) + " bytes"));
  }

  HttpResponse UploadTooLarge() const {
    return ErrorResponse(Status::ResourceExhausted(
        "upload is larger than the limit of " +
        std::to_string(shared_->options.max_upload_bytes) + " bytes (--max-upload-bytes)"));
  }

  void OnBody(beast::error_code ec) {
    if (over_budget_) return RefuseUnread(Busy(*shared_));
    if (ec) return OnReadError(ec);
    OnRequest();
  }

  void OnReadError(beast::error_code ec) {
    if (ec == beast::error::timeout && phase_ == Phase::kHeader) {
      Count(&ConnectionCounters::header_timeouts);
    } else if (ec == beast::error::timeout && phase_ == Phase::kBody &&
               shared_->options.min_body_rate > 0) {
      Count(&ConnectionCounters::slow_bodies);
    }
    if (ec == bhttp::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == beast::error::timeout || ec == asio::error::connection_reset ||
        ec == asio::error::eof) {
      return Close();
    }
    if (ec == bhttp::error::header_limit) {
      Count(&ConnectionCounters::headers_too_large);
      HttpResponse r = ErrorResponse(Status::InvalidArgument(
          "request header is larger than the limit of " +
          std::to_string(shared_->options.max_header_bytes) + " bytes"));
      r.status = 431;  // Request Header Fields Too Large
      return RefuseUnread(std::move(r));
    }
    if (ec == bhttp::error::body_limit) return RefuseUnread(BodyTooLarge());
    if (buffer_.size() == 0 && !parser_->got_some()) return Close();
    RefuseUnread(
        ErrorResponse(Status::InvalidArgument("malformed HTTP request: " + ec.message())));
  }

  // Answers `r` and closes the connection: the request's body (if any) was
  // not read, so the next request cannot be found on it.
  void RefuseUnread(HttpResponse r) {
    keep_alive_ = false;
    linger_ = true;
    ++shared_->in_flight;
    Send(std::move(r));
  }

  void OnRequest() { OnRequestFrom(parser_->get()); }

  template <class Message>
  void OnRequestFrom(Message& msg) {
    ++shared_->in_flight;
    keep_alive_ = msg.keep_alive();
    const std::string_view target(msg.target().data(), msg.target().size());
    const size_t q = target.find('?');
    if (q != std::string_view::npos) request_.query = std::string(target.substr(q + 1));
    if (!PercentDecode(target.substr(0, q), &request_.path)) {
      return Send(ErrorResponse(Status::InvalidArgument("malformed percent-escape in the URL")));
    }
    request_.method = std::string(msg.method_string());
    request_.headers.reserve(static_cast<size_t>(std::distance(msg.begin(), msg.end())));
    for (const auto& field : msg) {
      std::string name(field.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      request_.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    request_.peer = peer_;
    request_.actor = std::move(preauthorized_.actor);
    request_.authorized = preauthorized_.authorized;
    if constexpr (!std::is_same_v<typename Message::body_type, bhttp::string_body>) {
      request_.upload = std::move(upload_);
      return Dispatch();
    } else {
      request_.body = std::move(msg.body());
    }
    const std::string_view encoding = request_.Header("content-encoding");
    if (!encoding.empty()) {
      if (!IsSupportedEncoding(encoding)) {
        HttpResponse r = ErrorResponse(Status::InvalidArgument(
            "Content-Encoding '" + std::string(encoding) + "' is not supported (use gzip, deflate "
            "or identity)"));
        r.status = 415;
        return Send(std::move(r));
      }
      // The decoded body is held beside the wire body's reservation: bound
      // the inflation by what the budget has left, so that a request over it
      // costs no memory before it is refused.
      uint64_t limit = shared_->options.max_body_bytes;
      bool budget_bound = false;
      if (InflightBudget* budget = shared_->options.inflight_budget) {
        const uint64_t left = budget->capacity() - std::min(budget->capacity(), budget->reserved());
        if (left < limit) {
          limit = left;
          budget_bound = true;
        }
      }
      Status decoded = DecodeBody(encoding, limit, &request_.body);
      if (!decoded.ok()) {
        if (budget_bound && decoded.code() == Status::Code::kResourceExhausted) {
          return Send(Busy(*shared_));
        }
        return Send(ErrorResponse(decoded));
      }
      if (!Reserve(request_.body.size())) return Send(Busy(*shared_));
    }
    Dispatch();
  }

  // Hands the request to the router, which answers on any thread. The answer
  // is owed through a slot of shared_->replies: the router's, or the 503 of
  // a shutdown whose grace period ends first. Only the first goes out, and a
  // later one touches nothing of the server, which may be gone by then.
  void Dispatch() {
    auto slot = shared_->replies.Add(shared_from_this());
    if (slot == nullptr) return Send(ErrorResponse(ShuttingDown()));
    shared_->router->Dispatch(request_, [slot = std::move(slot)](HttpResponse response) {
      slot->Answer(
          [&](const std::shared_ptr<SessionBase>& self) { self->Reply(std::move(response)); });
    });
  }

  void Count(std::atomic<uint64_t> ConnectionCounters::*counter) {
    if (ConnectionCounters* c = shared_->options.counters) {
      (c->*counter).fetch_add(1, std::memory_order_relaxed);
    }
  }

  // Adds `bytes` to this request's share of the in-flight budget; false if
  // they do not fit (nothing is then added).
  bool Reserve(uint64_t bytes) {
    InflightBudget* budget = shared_->options.inflight_budget;
    if (budget == nullptr) return true;
    if (reservation_.bytes() > 0) return reservation_.TryGrow(bytes);
    std::optional<InflightBudget::Reservation> r = budget->TryReserve(bytes);
    if (!r) return false;
    reservation_ = std::move(*r);
    return true;
  }

  // The access line of a request answered an error before it reached the
  // core: refused here, by the router, or by an inference route before it
  // handed the request on (HttpRequest::access_logged).
  void LogIfRefused(const HttpResponse& r) const {
    if (r.status < 400 || request_.access_logged || shared_->options.refusals == nullptr) return;
    const std::string& model = request_.model.empty() ? preauthorized_.model : request_.model;
    LogRefusal(shared_->options.refusals,
               {.protocol = Protocol::kRest,
                .model = model,
                .http_status = r.status,
                .client = peer_,
                .start = started_},
               Status(CodeForHttpStatus(r.status), std::string()));
  }

  void Send(HttpResponse r) {
    LogIfRefused(r);
    response_ = {};
    response_.version(11);
    response_.result(static_cast<unsigned>(r.status));
    response_.set(bhttp::field::server, "berth");
    response_.set(bhttp::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) response_.insert(k, v);
    if (shared_->stopping) keep_alive_ = false;
    response_.keep_alive(keep_alive_);
    response_.body() = std::move(r.body);
    response_.prepare_payload();
    served_one_ = true;
    // A client that does not read its answer is closed like an idle one.
    Tcp().expires_after(shared_->options.idle_timeout);
    bhttp::async_write(stream_, response_,
                       [self = Self()](beast::error_code ec, size_t) {
                         --self->shared_->in_flight;
                         self->reservation_.Release();
                         self->request_ = HttpRequest{};
                         self->response_ = {};
                         if (ec || !self->keep_alive_ || self->shared_->stopping) {
                           return self->Close();
                         }
                         self->Read();
                       });
  }

  void Close() {
    if constexpr (!kTls) {
      beast::error_code ignored;
      Tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
    if (linger_ && !shared_->stopping) {
      linger_ = false;
      Tcp().expires_after(kLingerTime);
      return Drain();
    }
    if constexpr (kTls) {
      // close_notify, then the socket; a peer that does not read it is cut
      // off by the timeout.
      Tcp().expires_after(kTlsShutdownTime);
      return stream_.async_shutdown([self = Self()](beast::error_code) { self->Tcp().close(); });
    }
    Tcp().close();
  }

  // Reads and drops whatever the client still sends, until it closes, an
  // error, or kLingerTime after Close.
  void Drain() {
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(64 * 1024),
                            [self = Self()](beast::error_code ec, size_t) {
                              if (ec || self->shared_->stopping) return self->Tcp().close();
                              self->Drain();
                            });
  }

  std::shared_ptr<asio::ssl::context> tls_;  // TLS only; outlives stream_
  Stream stream_;
  Shared* shared_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  // An upload's parser (the header parser moved into it) and its file.
  std::optional<bhttp::request_parser<bhttp::file_body>> upload_parser_;
  std::shared_ptr<UploadedBody> upload_;
  // The authorization of a request whose body is read after it
  // (Router::Preauthorize): an upload's, or any body's with --require-auth.
  HttpRequest preauthorized_;
  // Beast keeps a reference to this callback, so it lives beside the parser.
  std::function<void(uint64_t, beast::string_view, beast::error_code&)> on_chunk_header_;
  bool over_budget_ = false;  // a chunk did not fit the in-flight budget
  InflightBudget::Reservation reservation_;
  std::string peer_;  // the client's address as text; empty if unknown
  HttpRequest request_;
  bhttp::response<bhttp::string_body> response_;
  bool keep_alive_ = true;
  bool linger_ = false;  // drain before closing: the request was not read whole
  bool served_one_ = false;  // a response was sent: the next request may idle first
  // What the read in progress waits for, to tell a slow client from an idle one.
  enum class Phase { kIdle, kHeader, kBody } phase_ = Phase::kHeader;
  std::chrono::steady_clock::time_point started_;  // the request's header read began
  std::chrono::steady_clock::time_point body_start_;
  uint64_t body_read_ = 0;  // body bytes the parser took since body_start_
};

// The answer above --max-connections, written whole in one non-blocking send.
const std::string& RefusalResponse() {
  static const std::string response = [] {
    const std::string body = ErrorResponse(Status::Unavailable(
        "the server has its limit of open connections; retry later")).body;
    return "HTTP/1.1 503 Service Unavailable\r\nServer: berth\r\n"
           "Content-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\n"
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  return response;
}

}  // namespace

class HttpServer::Impl {
 public:
  Impl(HttpServerOptions options, const Router* router)
      : ioc_(options.threads), acceptor_(asio::make_strand(ioc_)),
        accept_timer_(acceptor_.get_executor()) {
    shared_.router = router;
    shared_.options = std::move(options);
    shared_.wake_acceptor = [this] {
      asio::post(acceptor_.get_executor(), [this] {
        if (shared_.accept_paused) accept_timer_.cancel();
      });
    };
  }

  Status Start(uint16_t* bound_port) {
    beast::error_code ec;
    auto address = asio::ip::make_address(shared_.options.host, ec);
    if (ec) return Status::InvalidArgument("invalid --host '" + shared_.options.host + "'");
    tcp::endpoint endpoint(address, shared_.options.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::Unavailable("cannot listen on " + shared_.options.host + ":" +
                                 std::to_string(shared_.options.port) + ": " + ec.message());
    }
    *bound_port = acceptor_.local_endpoint().port();
    Accept();
    for (int i = 0; i < shared_.options.threads; ++i) {
      threads_.emplace_back([this] { ioc_.run(); });
    }
    return Status::Ok();
  }

  void Stop(std::chrono::milliseconds grace) {
    if (threads_.empty()) return;
    shared_.stopping = true;
    asio::post(acceptor_.get_executor(), [this] {
      beast::error_code ignored;
      acceptor_.close(ignored);
      accept_timer_.cancel();
    });
    WaitUntilNoneInFlight(std::chrono::steady_clock::now() + grace);
    // From here the requests still out in the core are answered 503 by the
    // server; so is every request that reaches the router from now on.
    const size_t cancelled = shared_.replies.CancelAll(
        [](const std::shared_ptr<SessionBase>& s) { s->Reply(ErrorResponse(ShuttingDown())); });
    if (shared_.in_flight > 0) {
      LOG_WARN("shutdown grace period over with requests in flight",
               {{"in_flight", std::to_string(shared_.in_flight.load())},
                {"answered_503", std::to_string(cancelled)}});
      WaitUntilNoneInFlight(std::chrono::steady_clock::now() + kCancelledReplyTime);
    }
    ioc_.stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void WaitUntilNoneInFlight(std::chrono::steady_clock::time_point deadline) {
    while (shared_.in_flight > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  // Runs on the acceptor's strand, as do OnAccept, PauseAccepting and the
  // timer's handler: the accept state below needs no lock.
  void Accept() {
    acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec, tcp::socket s) {
      OnAccept(ec, std::move(s));
    });
  }

  void OnAccept(beast::error_code ec, tcp::socket s) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    // A client that gave up while queued costs nothing: take the next one.
    if (ec == asio::error::connection_aborted) return Accept();
    if (ec) return PauseAccepting(ec);
    accept_pause_ = kMinAcceptPause;
    const int64_t max = shared_.options.max_connections;
    if (max > 0 && shared_.connections.load() >= max) {
      if (uint64_t unlogged = 0; refusal_log_.Due(&unlogged)) {
        LOG_WARN("connection refused: at the connection limit",
                 {{"max_connections", std::to_string(max)},
                  {"refusals_not_logged", std::to_string(unlogged)}});
      }
      Refuse(std::move(s));
    } else {
      s.set_option(tcp::no_delay(true), ec);
      if (shared_.options.tls != nullptr) {
        std::make_shared<Session<net::TlsStream>>(
            std::move(s), &shared_, shared_.options.tls->Current())
            ->Start();
      } else {
        std::make_shared<Session<beast::tcp_stream>>(std::move(s), &shared_)->Start();
      }
    }
    Accept();
  }

  // After any accept() failure but a client's early abort (typically EMFILE
  // or ENFILE, also ENOBUFS or ENOMEM), retrying at once would fail again at
  // full speed: wait, doubling the wait, or until a connection closes (the
  // likeliest way a descriptor comes free).
  void PauseAccepting(beast::error_code ec) {
    if (uint64_t unlogged = 0; accept_failure_log_.Due(&unlogged)) {
      LOG_WARN("accept failed; pausing new connections",
               {{"error", ec.message()},
                {"pause_ms", std::to_string(accept_pause_.count())},
                {"failures_not_logged", std::to_string(unlogged)}});
    }
    shared_.accept_paused = true;
    accept_timer_.expires_after(accept_pause_);
    accept_timer_.async_wait([this](beast::error_code) {
      // Fired or cancelled by a closing connection: either way, try again.
      shared_.accept_paused = false;
      if (!acceptor_.is_open()) return;
      Accept();
    });
    accept_pause_ = std::min(accept_pause_ * 2, kMaxAcceptPause);
  }

  // Above --max-connections: the 503 goes out in one non-blocking write (a
  // new socket's send buffer holds it; if not, the client sees only the
  // close), then the socket closes without waiting for the client.
  static void Refuse(tcp::socket s) {
    beast::error_code ec;
    s.non_blocking(true, ec);
    if (!ec) s.write_some(asio::buffer(RefusalResponse()), ec);
    // What the client has sent already is read and dropped, so that the
    // close is a FIN, not a reset that could destroy the 503 in transit.
    char scratch[4096];
    for (int i = 0; i < 16 && !ec && s.available(ec) > 0; ++i) {
      s.read_some(asio::buffer(scratch), ec);
    }
    s.shutdown(tcp::socket::shutdown_both, ec);
    s.close(ec);
  }

  Shared shared_;
  asio::io_context ioc_;
  // Keeps the threads running while the only pending work is a request out
  // in a scheduler (no socket operation outstanding), e.g. during shutdown,
  // once the acceptor is closed.
  asio::executor_work_guard<asio::io_context::executor_type> work_{ioc_.get_executor()};
  tcp::acceptor acceptor_;
  asio::steady_timer accept_timer_;
  std::chrono::milliseconds accept_pause_ = kMinAcceptPause;
  LogLimiter accept_failure_log_{kAcceptLogInterval};
  LogLimiter refusal_log_{kAcceptLogInterval};
  std::vector<std::thread> threads_;
};

HttpServer::HttpServer(HttpServerOptions options, const Router* router)
    : impl_(std::make_unique<Impl>(std::move(options), router)) {}

HttpServer::~HttpServer() { Stop(std::chrono::milliseconds(0)); }

Status HttpServer::Start() { return impl_->Start(&bound_port_); }

void HttpServer::Stop(std::chrono::milliseconds grace) { impl_->Stop(grace); }

}  // namespace berth::http
