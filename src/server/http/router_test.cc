#include "server/http/router.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace berth::http {
namespace {

// Registers handlers that record which route ran and with what captures.
class RouterTest : public ::testing::Test {
 protected:
  void Add(const std::string& method, const std::string& pattern) {
    router_.Add(method, pattern, [this, method, pattern](HttpRequest&, const PathParams& p, Reply reply) {
      hit_ = method + " " + pattern;
      params_ = p;
      reply(JsonResponse(200, "{}"));
    });
  }

  HttpResponse Dispatch(const std::string& method, const std::string& path) {
    hit_.reset();
    params_.clear();
    HttpRequest req;
    req.method = method;
    req.path = path;
    std::optional<HttpResponse> got;
    router_.Dispatch(req, [&](HttpResponse r) { got = std::move(r); });
    EXPECT_TRUE(got.has_value()) << "no reply for " << method << " " << path;
    return got.value_or(HttpResponse{});
  }

  Router router_;
  std::optional<std::string> hit_;
  PathParams params_;
};

TEST_F(RouterTest, LiteralRoute) {
  Add("GET", "/v2/health/live");
  EXPECT_EQ(Dispatch("GET", "/v2/health/live").status, 200);
  EXPECT_EQ(hit_, "GET /v2/health/live");
  EXPECT_TRUE(params_.empty());
}

TEST_F(RouterTest, CapturesWholeSegments) {
  Add("POST", "/v2/models/{model}/versions/{version}/infer");
  EXPECT_EQ(Dispatch("POST", "/v2/models/iris/versions/12/infer").status, 200);
  EXPECT_EQ(params_.at("model"), "iris");
  EXPECT_EQ(params_.at("version"), "12");
  EXPECT_EQ(params_.size(), 2u);
}

TEST_F(RouterTest, SuffixCapture) {
  Add("POST", "/v1/models/{model}:predict");
  EXPECT_EQ(Dispatch("POST", "/v1/models/iris:predict").status, 200);
  EXPECT_EQ(params_.at("model"), "iris");
  // The capture takes everything before the suffix, colons included.
  EXPECT_EQ(Dispatch("POST", "/v1/models/a:b:predict").status, 200);
  EXPECT_EQ(params_.at("model"), "a:b");
  // An empty capture or another verb does not match.
  EXPECT_EQ(Dispatch("POST", "/v1/models/:predict").status, 404);
  EXPECT_EQ(Dispatch("POST", "/v1/models/iris:classify").status, 404);
  EXPECT_EQ(Dispatch("POST", "/v1/models/iris").status, 404);
}

TEST_F(RouterTest, SegmentCountMustMatch) {
  Add("GET", "/v2/models/{model}");
  EXPECT_EQ(Dispatch("GET", "/v2/models").status, 404);
  EXPECT_EQ(Dispatch("GET", "/v2/models/iris/ready").status, 404);
  EXPECT_FALSE(hit_.has_value());
  EXPECT_EQ(Dispatch("GET", "/v2/models/iris").status, 200);
}

TEST_F(RouterTest, EmptySegmentsAreIgnored) {
  Add("GET", "/v2/health/ready");
  EXPECT_EQ(Dispatch("GET", "/v2/health/ready/").status, 200);
  EXPECT_EQ(Dispatch("GET", "//v2//health/ready").status, 200);
}

TEST_F(RouterTest, UnknownPathIs404) {
  Add("GET", "/v2/health/live");
  HttpResponse r = Dispatch("GET", "/v2/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, R"({"error":"no route for GET /v2/nope"})");
  EXPECT_FALSE(hit_.has_value());
}

TEST_F(RouterTest, KnownPathWrongMethodIs405) {
  Add("GET", "/v2/models/{model}");
  Add("POST", "/v2/models/{model}/infer");
  HttpResponse r = Dispatch("DELETE", "/v2/models/iris");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.body, R"({"error":"method DELETE is not allowed on /v2/models/iris"})");
  EXPECT_FALSE(hit_.has_value());
  EXPECT_EQ(Dispatch("GET", "/v2/models/iris/infer").status, 405);
  EXPECT_EQ(Dispatch("POST", "/v2/models/iris/infer").status, 200);
}

TEST_F(RouterTest, SamePatternDifferentMethods) {
  Add("GET", "/v2/repository/index");
  Add("POST", "/v2/repository/index");
  EXPECT_EQ(Dispatch("POST", "/v2/repository/index").status, 200);
  EXPECT_EQ(hit_, "POST /v2/repository/index");
  EXPECT_EQ(Dispatch("GET", "/v2/repository/index").status, 200);
  EXPECT_EQ(hit_, "GET /v2/repository/index");
}

TEST_F(RouterTest, FirstRegisteredRouteWins) {
  Add("GET", "/v2/models/stats");
  Add("GET", "/v2/models/{model}");
  Dispatch("GET", "/v2/models/stats");
  EXPECT_EQ(hit_, "GET /v2/models/stats");
  EXPECT_TRUE(params_.empty());
  Dispatch("GET", "/v2/models/iris");
  EXPECT_EQ(hit_, "GET /v2/models/{model}");
  EXPECT_EQ(params_.at("model"), "iris");
}

TEST_F(RouterTest, CapturesDoNotLeakFromRoutesThatFailedToMatch) {
  Add("GET", "/v2/models/{model}/versions/{version}");
  Add("GET", "/v2/models/{name}/ready/{what}");
  Dispatch("GET", "/v2/models/iris/ready/now");
  EXPECT_EQ(hit_, "GET /v2/models/{name}/ready/{what}");
  EXPECT_EQ(params_.size(), 2u);
  EXPECT_EQ(params_.count("model"), 0u);
  EXPECT_EQ(params_.at("name"), "iris");
}

}  // namespace
}  // namespace berth::http
