#include "server/auth/authorizer.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include "server/auth/api_key.h"

namespace berth::auth {
namespace {

namespace fs = std::filesystem;

class AuthorizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "berth_auth_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto store = OpenSqliteRegistryStore((dir_ / "registry.db").string());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Create(Authorizer* a, const std::string& name, std::vector<std::string> scopes,
                     double rate = 0) {
    auto key = a->CreateKey({name, std::move(scopes), rate, 0});
    EXPECT_TRUE(key.ok()) << key.status().ToString();
    return key.ok() ? "Bearer " + *key : "";
  }

  fs::path dir_;
  std::unique_ptr<RegistryStore> store_;
};

TEST_F(AuthorizerTest, RequireAuthDecisions) {
  Authorizer a({.require_auth = true}, store_.get());
  const std::string reader = Create(&a, "reader", {"read"});
  const std::string iris = Create(&a, "iris-only", {"infer:iris"});
  const std::string admin = Create(&a, "ops", {"admin"});
  const auto code = [&](std::string_view header, Scope scope, std::string_view model = "") {
    return a.Authorize({header, "10.0.0.1", model}, scope).status.code();
  };
  using C = Status::Code;
  EXPECT_EQ(code("", Scope::kNone), C::kOk);
  EXPECT_EQ(code("", Scope::kRead), C::kUnauthenticated);
  EXPECT_EQ(code("Basic x", Scope::kRead), C::kUnauthenticated);
  EXPECT_EQ(code("Bearer berth_nope", Scope::kRead), C::kUnauthenticated);
  EXPECT_EQ(code(reader, Scope::kRead), C::kOk);
  EXPECT_EQ(code(reader, Scope::kInfer, "iris"), C::kPermissionDenied);
  EXPECT_EQ(code(iris, Scope::kInfer, "iris"), C::kOk);
  // A model that does not exist answers as one that does: 403, not 404.
  EXPECT_EQ(code(iris, Scope::kInfer, "no_such_model"), C::kPermissionDenied);
  EXPECT_EQ(code(iris, Scope::kRead), C::kPermissionDenied);
  EXPECT_EQ(code(admin, Scope::kAdmin), C::kOk);
  EXPECT_EQ(code(admin, Scope::kInfer, "x"), C::kOk);
  // The actor is the key's name.
  EXPECT_EQ(a.Authorize({admin, "10.0.0.1", ""}, Scope::kAdmin).actor, "ops");
  // A right id with a wrong secret.
  std::string wrong = admin;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  EXPECT_EQ(code(wrong, Scope::kAdmin), C::kUnauthenticated);
  // Revoked: refused at once (the revocation reloads the cache).
  ASSERT_TRUE(a.RevokeKey("reader").ok());
  EXPECT_EQ(code(reader, Scope::kRead), C::kUnauthenticated);
  EXPECT_EQ(a.RevokeKey("reader").code(), C::kFailedPrecondition);
  EXPECT_EQ(a.RevokeKey("nobody").code(), C::kNotFound);
  // Names are never reused.
  EXPECT_EQ(a.CreateKey({"reader", {"read"}, 0, 0}).status().code(), C::kAlreadyExists);
  // Bad specs.
  EXPECT_EQ(a.CreateKey({"x y", {"read"}, 0, 0}).status().code(), C::kInvalidArgument);
  EXPECT_EQ(a.CreateKey({"x", {}, 0, 0}).status().code(), C::kInvalidArgument);
  EXPECT_EQ(a.CreateKey({"x", {"write"}, 0, 0}).status().code(), C::kInvalidArgument);
}

TEST_F(AuthorizerTest, ExpiredKeysAreRefused) {
  auto key = GenerateApiKey().value();
  ApiKeyRecord record{key.id,
                      "old",
                      key.salt,
                      key.hash,
                      {"read"},
                      0,
                      "2020-01-01T00:00:00Z",
                      "2020-01-02T00:00:00Z",
                      ""};
  ASSERT_TRUE(store_->CreateApiKey(record).ok());
  Authorizer a({.require_auth = true}, store_.get());
  ASSERT_TRUE(a.Reload().ok());
  const Decision d = a.Authorize({"Bearer " + key.key, "10.0.0.1", ""}, Scope::kRead);
  EXPECT_EQ(d.status.code(), Status::Code::kUnauthenticated);
  EXPECT_NE(d.status.message().find("expired"), std::string::npos);
  // One that expires in a day works.
  auth::KeySpec spec{"fresh", {"read"}, 0, 1};
  auto fresh = auth::CreateKey(store_.get(), spec);
  ASSERT_TRUE(fresh.ok());
  ASSERT_TRUE(a.Reload().ok());
  EXPECT_TRUE(a.Authorize({"Bearer " + *fresh, "10.0.0.1", ""}, Scope::kRead).ok());
  auto listed = a.ListKeys();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_FALSE((*listed)[0].expires_at.empty());
}

// A key's secret, once verified, is remembered (no SHA-256 per request);
// revocation, a wrong secret and the scopes are still checked every time,
// also across reloads.
TEST_F(AuthorizerTest, RememberedSecretStillHonoursRevocationAndScopes) {
  Authorizer a({.require_auth = true}, store_.get());
  const std::string reader = Create(&a, "reader", {"read"});
  const auto code = [&](std::string_view header, Scope scope) {
    return a.Authorize({header, "10.0.0.1", ""}, scope).status.code();
  };
  using C = Status::Code;
  EXPECT_EQ(code(reader, Scope::kRead), C::kOk);
  EXPECT_EQ(code(reader, Scope::kRead), C::kOk);
  ASSERT_TRUE(a.Reload().ok());
  EXPECT_EQ(code(reader, Scope::kRead), C::kOk);
  EXPECT_EQ(code(reader, Scope::kAdmin), C::kPermissionDenied);
  // The same id with another secret is refused.
  std::string wrong = reader;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  EXPECT_EQ(code(wrong, Scope::kRead), C::kUnauthenticated);
  EXPECT_EQ(code(reader, Scope::kRead), C::kOk);
  ASSERT_TRUE(a.RevokeKey("reader").ok());
  const Decision revoked = a.Authorize({reader, "10.0.0.1", ""}, Scope::kRead);
  EXPECT_EQ(revoked.status.code(), C::kUnauthenticated);
  EXPECT_NE(revoked.status.message().find("revoked"), std::string::npos);
}

TEST_F(AuthorizerTest, RateLimitAnswersRetryAfterAndSurvivesReload) {
  Authorizer a({.require_auth = true}, store_.get());
  const std::string key = Create(&a, "slow", {"infer"}, 2);
  EXPECT_TRUE(a.Authorize({key, "", "m"}, Scope::kInfer).ok());
  EXPECT_TRUE(a.Authorize({key, "", "m"}, Scope::kInfer).ok());
  ASSERT_TRUE(a.Reload().ok());
  const Decision d = a.Authorize({key, "", "m"}, Scope::kInfer);
  EXPECT_EQ(d.status.code(), Status::Code::kResourceExhausted);
  EXPECT_GE(d.retry_after_secs, 1);
}

TEST_F(AuthorizerTest, WithoutRequireAuthAdminIsLoopbackOnly) {
  Authorizer a({}, store_.get());
  EXPECT_TRUE(a.Authorize({"", "127.0.0.1", ""}, Scope::kAdmin).ok());
  EXPECT_TRUE(a.Authorize({"", "::1", ""}, Scope::kAdmin).ok());
  const Decision d = a.Authorize({"", "192.0.2.1", ""}, Scope::kAdmin);
  EXPECT_EQ(d.status.code(), Status::Code::kPermissionDenied);
  EXPECT_NE(d.status.message().find("loopback"), std::string::npos);
  EXPECT_TRUE(a.Authorize({"", "192.0.2.1", "m"}, Scope::kInfer).ok());
  Authorizer open({.allow_remote_admin = true}, store_.get());
  EXPECT_TRUE(open.Authorize({"", "192.0.2.1", ""}, Scope::kAdmin).ok());
}

// Requests authorized on several threads while the cache is replaced.
TEST_F(AuthorizerTest, ConcurrentAuthorizeAndReload) {
  Authorizer a({.require_auth = true}, store_.get());
  const std::string key = Create(&a, "busy", {"infer"}, 1e6);
  std::atomic<bool> stop{false};
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      while (!stop.load()) {
        if (!a.Authorize({key, "", "m"}, Scope::kInfer).ok()) refused.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(a.Reload().ok());
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(refused.load(), 0);
}

TEST(ParseRateTest, Forms) {
  EXPECT_EQ(ParseRate("10/s").value(), 10);
  EXPECT_EQ(ParseRate("2.5").value(), 2.5);
  for (std::string_view bad : {"", "/s", "0/s", "-1/s", "10/m", "nan", "inf", "1e7", "x"}) {
    EXPECT_FALSE(ParseRate(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace berth::auth
