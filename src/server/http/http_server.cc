#include "server/http/http_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <optional>

#include "core/logging.h"
#include "core/scheduler.h"
#include "server/http/content_encoding.h"
#include "server/pending_replies.h"

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

// How long the 503 answers sent when the shutdown grace period ends have to
// be written before the connections are closed.
constexpr std::chrono::seconds kCancelledReplyTime{1};

class Session;

struct Shared {
  const Router* router;
  HttpServerOptions options;
  std::atomic<int64_t> in_flight{0};
  std::atomic<bool> stopping{false};
  // The requests handed to the router and not yet answered.
  PendingReplies<std::shared_ptr<Session>> replies;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Shared* shared) : stream_(std::move(socket)), shared_(shared) {}

  void Start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); });
  }

  // Sends the answer to the request handed to the router; from any thread.
  void Reply(HttpResponse r) {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this(), r = std::move(r)]() mutable {
      self->Send(std::move(r));
    });
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->body_limit(shared_->options.max_body_bytes);
    stream_.expires_after(shared_->options.idle_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        self->OnRead(ec);
                      });
  }

  void OnRead(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == beast::error::timeout || ec == asio::error::connection_reset ||
        ec == asio::error::eof) {
      return Close();
    }
    if (ec == bhttp::error::body_limit) {
      keep_alive_ = false;
      ++shared_->in_flight;
      return Send(ErrorResponse(Status::ResourceExhausted(
          "request body is larger than the limit of " +
          std::to_string(shared_->options.max_body_bytes) + " bytes")));
    }
    if (ec) {
      if (buffer_.size() == 0 && !parser_->got_some()) return Close();
      keep_alive_ = false;
      ++shared_->in_flight;
      return Send(ErrorResponse(Status::InvalidArgument("malformed HTTP request: " + ec.message())));
    }
    ++shared_->in_flight;
    auto& msg = parser_->get();
    keep_alive_ = msg.keep_alive();
    request_ = HttpRequest{};
    request_.method = std::string(msg.method_string());
    const std::string_view target(msg.target().data(), msg.target().size());
    const size_t q = target.find('?');
    if (q != std::string_view::npos) request_.query = std::string(target.substr(q + 1));
    if (!PercentDecode(target.substr(0, q), &request_.path)) {
      return Send(ErrorResponse(Status::InvalidArgument("malformed percent-escape in the URL")));
    }
    for (const auto& field : msg) {
      std::string name(field.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      request_.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    request_.body = std::move(msg.body());
    const std::string_view encoding = request_.Header("content-encoding");
    if (!encoding.empty()) {
      if (!IsSupportedEncoding(encoding)) {
        HttpResponse r = ErrorResponse(Status::InvalidArgument(
            "Content-Encoding '" + std::string(encoding) + "' is not supported (use gzip, deflate "
            "or identity)"));
        r.status = 415;
        return Send(std::move(r));
      }
      Status decoded = DecodeBody(encoding, shared_->options.max_body_bytes, &request_.body);
      if (!decoded.ok()) return Send(ErrorResponse(decoded));
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
      slot->Answer([&](const std::shared_ptr<Session>& self) { self->Reply(std::move(response)); });
    });
  }

  void Send(HttpResponse r) {
    response_ = {};
    response_.version(11);
    response_.result(static_cast<unsigned>(r.status));
    response_.set(bhttp::field::server, "berth");
    response_.set(bhttp::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) response_.set(k, v);
    if (shared_->stopping) keep_alive_ = false;
    response_.keep_alive(keep_alive_);
    response_.body() = std::move(r.body);
    response_.prepare_payload();
    bhttp::async_write(stream_, response_,
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         --self->shared_->in_flight;
                         if (ec || !self->keep_alive_ || self->shared_->stopping) {
                           return self->Close();
                         }
                         self->Read();
                       });
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  Shared* shared_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  HttpRequest request_;
  bhttp::response<bhttp::string_body> response_;
  bool keep_alive_ = true;
};

}  // namespace

class HttpServer::Impl {
 public:
  Impl(HttpServerOptions options, const Router* router)
      : ioc_(options.threads), acceptor_(asio::make_strand(ioc_)) {
    shared_.router = router;
    shared_.options = std::move(options);
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
    });
    WaitUntilNoneInFlight(std::chrono::steady_clock::now() + grace);
    // From here the requests still out in the core are answered 503 by the
    // server; so is every request that reaches the router from now on.
    const size_t cancelled = shared_.replies.CancelAll(
        [](const std::shared_ptr<Session>& s) { s->Reply(ErrorResponse(ShuttingDown())); });
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

  void Accept() {
    acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
      if (!ec) {
        s.set_option(tcp::no_delay(true), ec);
        std::make_shared<Session>(std::move(s), &shared_)->Start();
      } else {
        LOG_WARN("accept failed", {{"error", ec.message()}});
      }
      Accept();
    });
  }

  Shared shared_;
  asio::io_context ioc_;
  // Keeps the threads running while the only pending work is a request out
  // in a scheduler (no socket operation outstanding), e.g. during shutdown,
  // once the acceptor is closed.
  asio::executor_work_guard<asio::io_context::executor_type> work_{ioc_.get_executor()};
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
};

HttpServer::HttpServer(HttpServerOptions options, const Router* router)
    : impl_(std::make_unique<Impl>(std::move(options), router)) {}

HttpServer::~HttpServer() { Stop(std::chrono::milliseconds(0)); }

Status HttpServer::Start() { return impl_->Start(&bound_port_); }

void HttpServer::Stop(std::chrono::milliseconds grace) { impl_->Stop(grace); }

}  // namespace berth::http
