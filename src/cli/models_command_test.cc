#include "cli/models_command.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace berth::cli {
namespace {

StatusOr<ModelsCommand> Parse(std::vector<std::string_view> args) {
  return ParseModelsCommand(args);
}

TEST(ModelsCommandTest, PromoteAsTheIssueWritesIt) {
  StatusOr<ModelsCommand> c =
      Parse({"promote", "--url", "http://127.0.0.1:8000", "iris", "3", "--alias", "staging"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->verb, ModelsVerb::kPromote);
  EXPECT_EQ(c->url, "http://127.0.0.1:8000");
  EXPECT_EQ(c->model, "iris");
  EXPECT_EQ(c->version, 3);
  EXPECT_EQ(c->alias, "staging");
  EXPECT_FALSE(c->reason.has_value());
  EXPECT_FALSE(c->json);
  EXPECT_EQ(c->timeout_secs, 30);
}

TEST(ModelsCommandTest, FlagsAnywhereAndInEitherForm) {
  StatusOr<ModelsCommand> c = Parse({"rollback", "iris", "--reason=bad canary",
                                     "--url=http://h:1", "--timeout-secs", "5", "--json"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->verb, ModelsVerb::kRollback);
  EXPECT_EQ(c->model, "iris");
  EXPECT_EQ(c->alias, "production");
  EXPECT_EQ(c->reason, "bad canary");
  EXPECT_EQ(c->timeout_secs, 5);
  EXPECT_TRUE(c->json);

  // An empty reason is a reason; "--alias=" is not an alias.
  c = Parse({"rollback", "--url", "http://h", "iris", "--reason="});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->reason, "");
}

TEST(ModelsCommandTest, ReadCommands) {
  StatusOr<ModelsCommand> c = Parse({"list", "--url", "http://h", "--json"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->verb, ModelsVerb::kList);
  EXPECT_EQ(c->model, "");
  c = Parse({"show", "--url", "http://h", "iris"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->verb, ModelsVerb::kShow);
  EXPECT_EQ(c->model, "iris");
  c = Parse({"history", "iris", "--url", "http://h"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->verb, ModelsVerb::kHistory);
}

TEST(ModelsCommandTest, UsageErrorsSayWhatIsWrong) {
  const std::pair<std::vector<std::string_view>, const char*> cases[] = {
      {{}, "needs a command"},
      {{"push", "--url", "http://h"}, "unknown models command 'push'"},
      {{"list"}, "needs --url"},
      {{"list", "--url"}, "needs a value"},
      {{"list", "--url="}, "invalid value"},
      {{"list", "--url", "http://h", "iris"}, "takes no model name, got 1 argument"},
      {{"show", "--url", "http://h"}, "takes NAME, got 0"},
      {{"history", "--url", "http://h", "a", "b"}, "takes NAME, got 2"},
      {{"promote", "--url", "http://h", "iris"}, "takes NAME and VERSION"},
      {{"promote", "--url", "http://h", "iris", "production"}, "positive whole number"},
      {{"promote", "--url", "http://h", "iris", "0"}, "positive whole number"},
      {{"promote", "--url", "http://h", "iris", "1.5"}, "positive whole number"},
      {{"promote", "--url", "http://h", "iris", "99999999999999999999"}, "positive whole number"},
      {{"rollback", "--url", "http://h", "iris", "2"}, "takes NAME, got 2"},
      {{"promote", "--url", "http://h", "../x", "1"}, "invalid model name"},
      {{"show", "--url", "http://h", "a/b"}, "path separator"},
      {{"list", "--url", "http://h", "--alias", "staging"}, "applies to promote and rollback"},
      {{"show", "--url", "http://h", "iris", "--reason", "x"}, "applies to promote and rollback"},
      {{"rollback", "--url", "http://h", "iris", "--alias="}, "needs a name"},
      {{"rollback", "--url", "http://h", "iris", "--reason", "\xff"}, "not valid UTF-8"},
      {{"list", "--url", "http://h", "--json=yes"}, "takes no value"},
      {{"list", "--url", "http://h", "--verbose"}, "unknown flag --verbose"},
      {{"list", "--url", "http://h", "-v"}, "unknown flag -v"},
      {{"list", "--url", "http://h", "--url", "http://g"}, "given twice"},
      {{"list", "--url", "http://h", "--timeout-secs", "0"}, "from 1 to"},
      {{"list", "--url", "http://h", "--timeout-secs", "ten"}, "from 1 to"},
      {{"list", "--url", "http://h", "--timeout-secs", "99999999999"}, "from 1 to"},
  };
  for (const auto& [args, why] : cases) {
    StatusOr<ModelsCommand> c = Parse(args);
    std::string joined;
    for (std::string_view a : args) joined += std::string(a) + " ";
    ASSERT_FALSE(c.ok()) << joined;
    EXPECT_EQ(c.status().code(), Status::Code::kInvalidArgument) << joined;
    EXPECT_NE(c.status().message().find(why), std::string::npos)
        << joined << "=> " << c.status().message();
  }
}

// Runs the command with stdout and stderr captured in temporary files.
struct Outcome {
  int exit_code;
  std::string out;
  std::string err;
};

std::string ReadAll(std::FILE* f) {
  std::rewind(f);
  std::string text;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof(buffer), f)) > 0;) text.append(buffer, n);
  std::fclose(f);
  return text;
}

Outcome RunCommand(std::vector<std::string_view> args) {
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  const int code = RunModelsCommand(args, out, err);
  return {code, ReadAll(out), ReadAll(err)};
}

TEST(ModelsCommandTest, UsageErrorExitsTwoWithTheUsageLines) {
  Outcome run = RunCommand({"promote", "--url", "http://127.0.0.1:1", "iris"});
  EXPECT_EQ(run.exit_code, kExitUsage);
  EXPECT_EQ(run.out, "");
  EXPECT_NE(run.err.find("takes NAME and VERSION"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find(kModelsSynopsis), std::string::npos) << run.err;
}

TEST(ModelsCommandTest, HelpGoesToStdoutAndExitsZero) {
  for (std::string_view help : {"--help", "-h"}) {
    Outcome run = RunCommand({"promote", help});
    EXPECT_EQ(run.exit_code, kExitOk);
    EXPECT_NE(run.out.find(kModelsSynopsis), std::string::npos);
    EXPECT_NE(run.out.find(kModelsHelp), std::string::npos);
    EXPECT_EQ(run.err, "");
  }
}

TEST(ModelsCommandTest, BadUrlExitsOneBeforeAnyConnection) {
  Outcome run = RunCommand({"list", "--url", "https://127.0.0.1:8000"});
  EXPECT_EQ(run.exit_code, kExitFailure);
  EXPECT_NE(run.err.find("TLS (https://) is not supported yet"), std::string::npos) << run.err;
  run = RunCommand({"list", "--url", "localhost:8000"});
  EXPECT_EQ(run.exit_code, kExitFailure);
  EXPECT_NE(run.err.find("expected http://HOST[:PORT]"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace berth::cli
