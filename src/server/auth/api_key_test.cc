#include "server/auth/api_key.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace berth::auth {
namespace {

TEST(ApiKeyTest, GeneratedKeysHaveTheFormatAndAreUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    auto key = GenerateApiKey();
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    EXPECT_EQ(key->key.size(), kKeyLength);
    auto parts = ParseApiKey(key->key);
    ASSERT_TRUE(parts.ok()) << key->key;
    EXPECT_EQ(parts->id, key->id);
    EXPECT_EQ(key->salt.size(), 32u);
    EXPECT_EQ(key->hash.size(), 64u);
    EXPECT_TRUE(SecretMatches(key->salt, key->hash, parts->secret));
    // The key's text is nowhere in what the store keeps.
    EXPECT_EQ(key->hash.find(parts->secret), std::string::npos);
    EXPECT_TRUE(seen.insert(key->key).second);
  }
}

TEST(ApiKeyTest, ParseRefusesAnythingElse) {
  const std::string good = "berth_0123456789ab_0123456789abcdef0123456789abcdef";
  ASSERT_TRUE(ParseApiKey(good).ok());
  const std::vector<std::string> bad_keys = {
      "",
      "berth_",
      good + "0",
      good.substr(1),
      "Berth_0123456789ab_0123456789abcdef0123456789abcdef",
      "berth_0123456789aB_0123456789abcdef0123456789abcdef",
      "berth_0123456789ab-0123456789abcdef0123456789abcdef",
      "berth_0123456789ab_0123456789abcdef0123456789abcdeg",
      std::string("berth_0123456789ab_0123456789abcdef0123456789abcde\0", 51)};
  for (const std::string& bad : bad_keys) {
    auto parsed = ParseApiKey(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    // Never quotes what it was given: it may be a key.
    if (bad.size() > kKeyPrefix.size()) {
      EXPECT_EQ(parsed.status().message().find(bad), std::string::npos);
    }
  }
}

TEST(ApiKeyTest, HashIsSaltedSha256) {
  // SHA-256("" || "abc"): the salt is decoded from hex first.
  EXPECT_EQ(HashSecret("", "abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_NE(HashSecret("00", "abc"), HashSecret("01", "abc"));
  EXPECT_EQ(HashSecret("0g", "abc"), "");
  EXPECT_EQ(HashSecret("0", "abc"), "");
  EXPECT_FALSE(SecretMatches("zz", "", "abc"));
  EXPECT_FALSE(SecretMatches("00", HashSecret("00", "abc"), "abd"));
  EXPECT_TRUE(SecretMatches("00", HashSecret("00", "abc"), "abc"));
  EXPECT_FALSE(SecretMatches("00", HashSecret("00", "abc").substr(1), "abc"));
}

TEST(VerifiedSecretTest, RemembersTheFirstSecretOnly) {
  const std::string a(kKeySecretDigits, 'a');
  const std::string b(kKeySecretDigits, 'b');
  VerifiedSecret verified;
  EXPECT_FALSE(verified.Matches(a));
  verified.Remember("short");  // not a secret's length: ignored
  EXPECT_FALSE(verified.Matches("short"));
  verified.Remember(a);
  EXPECT_TRUE(verified.Matches(a));
  EXPECT_FALSE(verified.Matches(b));
  EXPECT_FALSE(verified.Matches(a.substr(1)));
  verified.Remember(b);  // the first one stays
  EXPECT_TRUE(verified.Matches(a));
  EXPECT_FALSE(verified.Matches(b));
}

TEST(BearerTest, ReadsTheToken) {
  EXPECT_EQ(ParseBearer("Bearer abc").value(), "abc");
  EXPECT_EQ(ParseBearer("bearer abc").value(), "abc");
  EXPECT_EQ(ParseBearer("BEARER   abc==").value(), "abc==");
  EXPECT_EQ(ParseBearer("Bearer a.b-c_d~e+f/g ").value(), "a.b-c_d~e+f/g");
  for (std::string_view bad : {"", "Bearer", "Bearer ", "Bearerabc", "Basic abc", "Bearer a b",
                               "Bearer =abc", "Bearer a=b", "Bearer\tabc", "Bear abc"}) {
    auto token = ParseBearer(bad);
    EXPECT_FALSE(token.ok()) << bad;
  }
  auto token = ParseBearer("Token secret_value");
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.status().message().find("secret_value"), std::string::npos);
}

}  // namespace
}  // namespace berth::auth
