#include "core/model_name.h"

#include <gtest/gtest.h>

#include <string>

namespace berth {
namespace {

using namespace std::string_literals;

TEST(ModelNameTest, AcceptsOrdinaryNames) {
  for (std::string_view name : {"iris", "iris_logreg", "a", "model-2.v1", "Modèle", "模型"}) {
    EXPECT_TRUE(ValidateModelName(name).ok()) << name;
  }
  EXPECT_TRUE(ValidateModelName(std::string(kMaxModelNameBytes, 'm')).ok());
}

TEST(ModelNameTest, RefusesWhatFileSystemsAndLogsCannotTakeSafely) {
  const std::string cases[] = {
      "",
      std::string(kMaxModelNameBytes + 1, 'm'),
      std::string(4096, 'x'),
      "lin\0"s,
      "lin\0extra"s,
      "a\nb",
      "a\x7f",
      "a\tb",
      ".hidden",
      "..",
      "a/b",
      "../etc",
      "a\\b",
      "\xff\xfe",
      "\xc0\xaf",          // overlong '/'
      "\xed\xa0\x80",      // a surrogate
      "abc\xe2\x82",       // truncated sequence
  };
  for (const std::string& name : cases) {
    Status s = ValidateModelName(name);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << PrintableExcerpt(name);
  }
}

TEST(ModelNameTest, MessagesQuoteOnlyAPrintableExcerpt) {
  Status s = ValidateModelName("bad\nname");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "invalid model name 'bad?name': it contains a control character");
  Status long_name = ValidateModelName(std::string(100000, 'x'));
  ASSERT_FALSE(long_name.ok());
  EXPECT_LT(long_name.message().size(), 200u);
}

TEST(ModelNameTest, PrintableExcerptReplacesUnsafeBytes) {
  EXPECT_EQ(PrintableExcerpt("ok"), "ok");
  EXPECT_EQ(PrintableExcerpt("a\0b"s), "a?b");
  EXPECT_EQ(PrintableExcerpt("\xff" "é"), "?é");
  EXPECT_EQ(PrintableExcerpt("abcdef", 3), "abc...");
}

}  // namespace
}  // namespace berth
