// HttpServer::Stop with a request still out in the core: a real client over
// a socket; the "core" is a route that keeps the reply until the test sends it.
#include "server/http/http_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <string>

#include "server/http/router.h"

namespace berth::http {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;

// What a route handed to the core: the reply it owes, sent later by the test.
class HeldReply {
 public:
  void Keep(Reply reply) {
    std::lock_guard lock(mu_);
    reply_ = std::move(reply);
    kept_.notify_all();
  }
  void WaitUntilKept() {
    std::unique_lock lock(mu_);
    kept_.wait(lock, [this] { return reply_.has_value(); });
  }
  void Send(HttpResponse r) {
    std::optional<Reply> reply;
    {
      std::lock_guard lock(mu_);
      reply.swap(reply_);
    }
    (*reply)(std::move(r));
  }

 private:
  std::mutex mu_;
  std::condition_variable kept_;
  std::optional<Reply> reply_;
};

struct ClientResult {
  int status = 0;  // 0: no response (the connection was closed)
  std::string body;
};

// One POST on a fresh connection; waits for the response or the close.
ClientResult Post(uint16_t port, const std::string& target) {
  ClientResult result;
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return result;
  stream.expires_after(20s);  // a bound on a hang, not a measurement
  bhttp::request<bhttp::string_body> request(bhttp::verb::post, target, 11);
  request.set(bhttp::field::host, "127.0.0.1");
  request.body() = "{}";
  request.prepare_payload();
  bhttp::write(stream, request, ec);
  if (ec) return result;
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> response;
  bhttp::read(stream, buffer, response, ec);
  if (ec) return result;
  result.status = static_cast<int>(response.result_int());
  result.body = response.body();
  return result;
}

class HttpServerShutdownTest : public ::testing::Test {
 protected:
  HttpServerShutdownTest() {
    router_.Add(
        "POST", "/held", auth::Scope::kInfer,
        [this](HttpRequest&, const PathParams&, Reply reply) { held_.Keep(std::move(reply)); });
    HttpServerOptions options;
    options.port = 0;
    server_ = std::make_unique<HttpServer>(options, &router_);
    EXPECT_TRUE(server_->Start().ok());
  }

  Router router_;
  HeldReply held_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerShutdownTest, AReplyWithinTheGraceGoesOut) {
  auto client =
      std::async(std::launch::async, [port = server_->port()] { return Post(port, "/held"); });
  held_.WaitUntilKept();
  auto stopped = std::async(std::launch::async, [this] { server_->Stop(30s); });
  held_.Send(JsonResponse(200, "{\"done\":true}"));
  const ClientResult result = client.get();
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.body, "{\"done\":true}");
  EXPECT_EQ(stopped.wait_for(30s), std::future_status::ready);
}

TEST_F(HttpServerShutdownTest, PastTheGraceTheClientGets503AndALateReplyTouchesNothing) {
  auto client =
      std::async(std::launch::async, [port = server_->port()] { return Post(port, "/held"); });
  held_.WaitUntilKept();
  server_->Stop(50ms);  // does not wait for the held reply
  const ClientResult result = client.get();
  EXPECT_EQ(result.status, 503);
  EXPECT_NE(result.body.find("the server is shutting down"), std::string::npos) << result.body;
  server_.reset();
  // The core completes after the front end is gone: dropped, and nothing of
  // the server is touched (ASan would see a use after free).
  held_.Send(JsonResponse(200, "{\"late\":true}"));
}

}  // namespace
}  // namespace berth::http
