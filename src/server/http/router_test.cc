#include "server/http/router.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace berth::http {
namespace {

// Registers handlers that record which route ran and with what captures.
class RouterTest : public ::testing::Test {
 protected:
  void Add(const std::string& method, const std::string& pattern,
           auth::Scope scope = auth::Scope::kRead) {
    router_.Add(method, pattern, scope,
                [this, method, pattern](HttpRequest& req, const PathParams& p, Reply reply) {
                  hit_ = method + " " + pattern;
                  actor_ = req.actor;
                  params_ = p;
                  reply(JsonResponse(200, "{}"));
                });
  }

  HttpResponse Dispatch(const std::string& method, const std::string& path,
                        const std::string& peer = "127.0.0.1") {
    hit_.reset();
    params_.clear();
    HttpRequest req;
    req.method = method;
    req.path = path;
    req.peer = peer;
    std::optional<HttpResponse> got;
    router_.Dispatch(req, [&](HttpResponse r) { got = std::move(r); });
    EXPECT_TRUE(got.has_value()) << "no reply for " << method << " " << path;
    return got.value_or(HttpResponse{});
  }

  Router router_;
  std::optional<std::string> hit_;
  std::string actor_;
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

// Without --require-auth, admin routes answer loopback clients only, and
// say why to the others; the handler never runs for them.
TEST_F(RouterTest, AdminRoutesAreForLoopbackOnlyAndSayWhy) {
  Add("POST", "/v2/repository/models/{model}/load", auth::Scope::kAdmin);
  for (const char* peer : {"127.0.0.1", "::1", "::ffff:127.0.0.1"}) {
    EXPECT_EQ(Dispatch("POST", "/v2/repository/models/m/load", peer).status, 200) << peer;
    EXPECT_EQ(actor_, peer);
  }
  for (const char* peer : {"10.1.2.3", "::ffff:10.1.2.3", "2001:db8::1", ""}) {
    const HttpResponse r = Dispatch("POST", "/v2/repository/models/m/load", peer);
    EXPECT_EQ(r.status, 403) << peer;
    EXPECT_NE(r.body.find("loopback"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("--require-auth"), std::string::npos) << r.body;
    EXPECT_FALSE(hit_.has_value()) << peer;
  }
}

TEST_F(RouterTest, OtherScopesAreOpenWithoutRequireAuth) {
  Add("POST", "/v2/models/{model}/infer", auth::Scope::kInfer);
  Add("GET", "/v2/health/live", auth::Scope::kNone);
  Add("GET", "/metrics", auth::Scope::kRead);
  EXPECT_EQ(Dispatch("POST", "/v2/models/m/infer", "10.1.2.3").status, 200);
  EXPECT_EQ(Dispatch("GET", "/v2/health/live", "10.1.2.3").status, 200);
  EXPECT_EQ(Dispatch("GET", "/metrics", "10.1.2.3").status, 200);
}

// With --require-auth and no key store: every route but kNone is 401, with
// WWW-Authenticate: Bearer, before the handler runs.
TEST(RouterAuthTest, RequireAuthRefusesBeforeTheHandler) {
  auth::Authorizer authorizer({.require_auth = true}, nullptr);
  Router router(&authorizer);
  bool ran = false;
  for (auto [pattern, scope] : {std::pair{"/v2/health/live", auth::Scope::kNone},
                                std::pair{"/v2/models/{model}", auth::Scope::kRead}}) {
    router.Add("GET", pattern, scope, [&](HttpRequest&, const PathParams&, Reply reply) {
      ran = true;
      reply(JsonResponse(200, "{}"));
    });
  }
  HttpRequest req;
  req.method = "GET";
  req.path = "/v2/models/secret_model";
  req.peer = "127.0.0.1";
  HttpResponse got;
  router.Dispatch(req, [&](HttpResponse r) { got = std::move(r); });
  EXPECT_EQ(got.status, 401);
  EXPECT_FALSE(ran);
  EXPECT_EQ(got.body.find("secret_model"), std::string::npos) << got.body;
  ASSERT_EQ(got.headers.size(), 1u);
  EXPECT_EQ(got.headers[0], (std::pair<std::string, std::string>{"WWW-Authenticate", "Bearer"}));
  req.path = "/v2/health/live";
  router.Dispatch(req, [&](HttpResponse r) { got = std::move(r); });
  EXPECT_EQ(got.status, 200);
  EXPECT_TRUE(ran);
}

}  // namespace
}  // namespace berth::http
