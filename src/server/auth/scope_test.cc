#include "server/auth/scope.h"

#include <gtest/gtest.h>

namespace berth::auth {
namespace {

std::vector<Grant> Grants(std::initializer_list<std::string_view> texts) {
  std::vector<Grant> out;
  for (std::string_view t : texts) out.push_back(ParseGrant(t).value());
  return out;
}

TEST(ScopeTest, ParsesTheFourForms) {
  EXPECT_EQ(ParseGrant("infer").value(), (Grant{Scope::kInfer, ""}));
  EXPECT_EQ(ParseGrant("infer:iris").value(), (Grant{Scope::kInfer, "iris"}));
  EXPECT_EQ(ParseGrant("read").value(), (Grant{Scope::kRead, ""}));
  EXPECT_EQ(ParseGrant("admin").value(), (Grant{Scope::kAdmin, ""}));
  for (std::string_view bad :
       {"", "Infer", "infer:", "infer:../x", "read:iris", "admin:iris", "none", "write"}) {
    EXPECT_FALSE(ParseGrant(bad).ok()) << bad;
  }
  for (std::string_view text : {"infer", "infer:iris", "read", "admin"}) {
    EXPECT_EQ(GrantText(ParseGrant(text).value()), text);
  }
}

TEST(ScopeTest, Matching) {
  EXPECT_TRUE(Allows({}, Scope::kNone, ""));
  EXPECT_FALSE(Allows({}, Scope::kRead, ""));
  // admin allows everything.
  for (Scope s : {Scope::kRead, Scope::kInfer, Scope::kAdmin}) {
    EXPECT_TRUE(Allows(Grants({"admin"}), s, "any"));
  }
  EXPECT_TRUE(Allows(Grants({"infer"}), Scope::kInfer, "iris"));
  EXPECT_TRUE(Allows(Grants({"infer"}), Scope::kInfer, ""));
  EXPECT_FALSE(Allows(Grants({"infer"}), Scope::kRead, ""));
  EXPECT_FALSE(Allows(Grants({"infer"}), Scope::kAdmin, ""));
  EXPECT_TRUE(Allows(Grants({"infer:iris"}), Scope::kInfer, "iris"));
  EXPECT_FALSE(Allows(Grants({"infer:iris"}), Scope::kInfer, "iris2"));
  EXPECT_FALSE(Allows(Grants({"infer:iris"}), Scope::kInfer, "iri"));
  // A route that names no model (the platform routes) needs unrestricted infer.
  EXPECT_FALSE(Allows(Grants({"infer:iris"}), Scope::kInfer, ""));
  EXPECT_FALSE(Allows(Grants({"infer:iris"}), Scope::kRead, "iris"));
  EXPECT_TRUE(Allows(Grants({"read"}), Scope::kRead, "iris"));
  EXPECT_FALSE(Allows(Grants({"read"}), Scope::kInfer, "iris"));
  EXPECT_FALSE(Allows(Grants({"read", "infer:a"}), Scope::kAdmin, ""));
  EXPECT_TRUE(Allows(Grants({"read", "infer:a", "infer:b"}), Scope::kInfer, "b"));
}

}  // namespace
}  // namespace berth::auth
