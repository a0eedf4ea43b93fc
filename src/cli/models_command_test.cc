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

TEST(ModelsCommandTest, ClientCertificateFlags) {
  StatusOr<ModelsCommand> c = Parse({"list", "--url", "https://h:1", "--cert", "c.pem",
                                     "--key=k.pem", "--ca-file", "ca.pem"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->cert_file, "c.pem");
  EXPECT_EQ(c->key_file, "k.pem");
  c = Parse({"list", "--url", "https://h:1", "--cert", "both.pem"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->key_file, "");  // in the certificate's file

  c = Parse({"list", "--url", "https://h:1", "--key", "k.pem"});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("--key goes with --cert"), std::string::npos);
  EXPECT_FALSE(Parse({"list", "--url", "https://h:1", "--cert="}).ok());
  EXPECT_FALSE(Parse({"list", "--url", "https://h:1", "--cert", "a", "--cert", "b"}).ok());

  StatusOr<net::TlsFiles> files =
      ClientTlsFiles(*net::ParseServerUrl("http://h:1"), "", "c.pem", "");
  ASSERT_FALSE(files.ok());
  EXPECT_NE(files.status().message().find("for an https:// URL"), std::string::npos);
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
  // NAME is optional for list (a filter), show and history (every model).
  c = Parse({"list", "--url", "http://h", "iris"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->model, "iris");
  for (const char* verb : {"show", "history"}) {
    c = Parse({verb, "--url", "http://h"});
    ASSERT_TRUE(c.ok()) << c.status().message();
    EXPECT_EQ(c->model, "");
  }
  c = Parse({"history", "iris", "--url", "http://h"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->verb, ModelsVerb::kHistory);
}

TEST(ModelsCommandTest, PushAsTheIssueWritesIt) {
  StatusOr<ModelsCommand> c = Parse({"push", "--url", "http://127.0.0.1:8000", "--name", "iris",
                                     "model.onnx", "--metadata", "meta.json"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->verb, ModelsVerb::kPush);
  EXPECT_EQ(c->model, "iris");
  EXPECT_EQ(c->file, "model.onnx");
  EXPECT_EQ(c->metadata_file, "meta.json");
  EXPECT_FALSE(c->config_file.has_value());
  EXPECT_FALSE(c->allow_signature_change);

  c = Parse({"push", "--url", "http://h", "--name", "scaler", "./v2/", "--config", "config.yaml"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->file, "./v2/");
  EXPECT_EQ(c->config_file, "config.yaml");

  c = Parse({"push", "m.onnx", "--name=iris", "--url=http://h", "--allow-signature-change",
             "--json"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->file, "m.onnx");
  EXPECT_FALSE(c->metadata_file.has_value());
  EXPECT_TRUE(c->allow_signature_change);
  EXPECT_TRUE(c->json);
}

TEST(ModelsCommandTest, SplitAsTheIssueWritesIt) {
  StatusOr<ModelsCommand> c = Parse({"split", "--url", "http://127.0.0.1:8000", "iris", "--alias",
                                     "production", "3=90", "4=10", "--reason", "canary"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->verb, ModelsVerb::kSplit);
  EXPECT_EQ(c->model, "iris");
  EXPECT_EQ(c->alias, "production");
  EXPECT_EQ(c->reason, "canary");
  ASSERT_EQ(c->split.size(), 2u);
  EXPECT_EQ(c->split[0].version, 3);
  EXPECT_EQ(c->split[0].weight, 90);
  EXPECT_EQ(c->split[1].version, 4);
  EXPECT_EQ(c->split[1].weight, 10);

  // A/B/N, the default alias, the largest weight the server takes.
  c = Parse({"split", "iris", "1=1", "2=1", "7=2147483647", "--url", "http://h"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->alias, "production");
  ASSERT_EQ(c->split.size(), 3u);
  EXPECT_EQ(c->split[2].version, 7);
  EXPECT_EQ(c->split[2].weight, 2147483647);
}

TEST(ModelsCommandTest, SplitWithAStickyKey) {
  StatusOr<ModelsCommand> c = Parse({"split", "--url", "http://h", "iris", "--alias", "production",
                                     "3=90", "4=10", "--sticky-key", "X-User-Id"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->sticky_key, "X-User-Id");
  c = Parse({"split", "--url", "http://h", "iris", "3=90", "4=10"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_FALSE(c->sticky_key.has_value());
}

TEST(ModelsCommandTest, ArchiveRestoreAndDeleteAsTheIssueWritesThem) {
  const std::pair<const char*, ModelsVerb> verbs[] = {{"archive", ModelsVerb::kArchive},
                                                      {"restore", ModelsVerb::kRestore},
                                                      {"delete", ModelsVerb::kDelete}};
  for (const auto& [verb, expected] : verbs) {
    StatusOr<ModelsCommand> c = Parse({verb, "--url", "http://127.0.0.1:8000", "iris", "3"});
    ASSERT_TRUE(c.ok()) << verb << ": " << c.status().message();
    EXPECT_EQ(c->verb, expected);
    EXPECT_EQ(c->model, "iris");
    EXPECT_EQ(c->version, 3);
    EXPECT_FALSE(c->force);
  }
  StatusOr<ModelsCommand> c =
      Parse({"delete", "iris", "--force", "4", "--reason", "leaked PII", "--url=http://h"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_TRUE(c->force);
  EXPECT_EQ(c->version, 4);
  EXPECT_EQ(c->reason, "leaked PII");
}

TEST(ModelsCommandTest, ShadowAsTheIssueWritesIt) {
  StatusOr<ModelsCommand> c =
      Parse({"shadow", "--url", "http://127.0.0.1:8000", "iris", "4", "--percent", "20"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->verb, ModelsVerb::kShadow);
  EXPECT_EQ(c->model, "iris");
  EXPECT_EQ(c->version, 4);
  EXPECT_EQ(c->percent, 20);
  EXPECT_FALSE(c->shadow_off);
  EXPECT_FALSE(c->reason.has_value());

  c = Parse({"shadow", "--percent=100", "iris", "--reason", "try v4", "7", "--url=http://h"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->version, 7);
  EXPECT_EQ(c->percent, 100);
  EXPECT_EQ(c->reason, "try v4");

  c = Parse({"shadow", "--url", "http://h", "iris", "4", "--off"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_TRUE(c->shadow_off);
  EXPECT_EQ(c->version, 4);

  c = Parse({"shadow", "--url", "http://h", "iris", "--off", "--json"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->model, "iris");
  EXPECT_TRUE(c->shadow_off);
  EXPECT_EQ(c->version, 0);
  EXPECT_EQ(c->percent, 0);
  EXPECT_TRUE(c->json);
}

TEST(ModelsCommandTest, SplitWeightsArePositiveWholeNumbers) {
  const std::pair<const char*, const char*> cases[] = {
      {"3", "expected VERSION=WEIGHT"},
      {"3:90", "expected VERSION=WEIGHT"},
      {"=90", "the version must be"},
      {"0=90", "the version must be"},
      {"v3=90", "the version must be"},
      {"3=", "the weight must be"},
      {"3=0", "the weight must be"},
      {"3=-1", "the weight must be"},
      {"3=1.5", "the weight must be"},
      {"3=90%", "the weight must be"},
      {"3=2147483648", "the weight must be"},
      {"3=90=1", "the weight must be"},
  };
  for (const auto& [text, why] : cases) {
    StatusOr<SplitWeight> w = ParseSplitWeight(text);
    ASSERT_FALSE(w.ok()) << text;
    EXPECT_EQ(w.status().code(), Status::Code::kInvalidArgument) << text;
    EXPECT_NE(w.status().message().find(why), std::string::npos)
        << text << ": " << w.status().message();
    EXPECT_NE(w.status().message().find(std::string("'") + text + "'"), std::string::npos)
        << w.status().message();
  }
}

TEST(ModelsCommandTest, UsageErrorsSayWhatIsWrong) {
  const std::pair<std::vector<std::string_view>, const char*> cases[] = {
      {{}, "needs a command"},
      {{"pull", "--url", "http://h"}, "unknown models command 'pull'"},
      {{"list"}, "needs --url"},
      {{"list", "--url"}, "needs a value"},
      {{"list", "--url="}, "invalid value"},
      {{"list", "--url", "http://h", "iris", "x"}, "takes at most NAME, got 2 arguments"},
      {{"show", "--url", "http://h", "a", "b"}, "takes at most NAME, got 2"},
      {{"history", "--url", "http://h", "a", "b"}, "takes at most NAME, got 2"},
      {{"shadow", "--url", "http://h", "iris", "4", "5", "--off"}, "--off takes NAME [VERSION]"},
      {{"shadow", "--url", "http://h", "iris", "x", "--off"}, "positive whole number"},
      {{"promote", "--url", "http://h", "iris"}, "takes NAME and VERSION"},
      {{"promote", "--url", "http://h", "iris", "production"}, "positive whole number"},
      {{"promote", "--url", "http://h", "iris", "0"}, "positive whole number"},
      {{"promote", "--url", "http://h", "iris", "1.5"}, "positive whole number"},
      {{"promote", "--url", "http://h", "iris", "99999999999999999999"}, "positive whole number"},
      {{"rollback", "--url", "http://h", "iris", "2"}, "takes NAME, got 2"},
      {{"promote", "--url", "http://h", "../x", "1"}, "invalid model name"},
      {{"show", "--url", "http://h", "a/b"}, "path separator"},
      {{"list", "--url", "http://h", "--alias", "staging"}, "applies to promote, rollback and split"},
      {{"show", "--url", "http://h", "iris", "--reason", "x"},
       "applies to push, promote, rollback, split, shadow, archive, restore, delete and "
       "baseline, not to show"},
      {{"promote", "--url", "http://h", "iris", "2", "--sticky-key", "x"},
       "applies to split, not to promote"},
      {{"promote", "--url", "http://h", "iris", "2", "--force"},
       "applies to archive and delete, not to promote"},
      {{"restore", "--url", "http://h", "iris", "2", "--force"},
       "applies to archive and delete, not to restore"},
      {{"archive", "--url", "http://h", "iris"}, "takes NAME and VERSION, got 1 argument"},
      {{"delete", "--url", "http://h", "iris", "two"}, "VERSION must be a positive whole number"},
      {{"archive", "--url", "http://h", "iris", "2", "--force=yes"}, "takes no value"},
      {{"split", "--url", "http://h", "iris", "1=1", "2=1", "--sticky-key", ""},
       "expected a header name"},
      {{"rollback", "--url", "http://h", "iris", "--alias="}, "needs a name"},
      {{"rollback", "--url", "http://h", "iris", "--reason", "\xff"}, "not valid UTF-8"},
      {{"list", "--url", "http://h", "--json=yes"}, "takes no value"},
      {{"list", "--url", "http://h", "--verbose"}, "unknown flag --verbose"},
      {{"list", "--url", "http://h", "-v"}, "unknown flag -v"},
      {{"list", "--url", "http://h", "--url", "http://g"}, "given twice"},
      {{"list", "--url", "http://h", "--timeout-secs", "0"}, "from 1 to"},
      {{"list", "--url", "http://h", "--timeout-secs", "ten"}, "from 1 to"},
      {{"list", "--url", "http://h", "--timeout-secs", "99999999999"}, "from 1 to"},
      {{"push", "--url", "http://h", "m.onnx"}, "needs --name NAME"},
      {{"push", "--url", "http://h", "--name", "iris"}, "takes FILE, the artifact to push, got 0"},
      {{"push", "--url", "http://h", "--name", "iris", "a", "b"}, "got 2"},
      {{"push", "--url", "http://h", "--name", "iris", ""}, "FILE is empty"},
      {{"push", "--url", "http://h", "--name", "../x", "m.onnx"}, "invalid model name"},
      {{"push", "--url", "http://h", "--name", "iris", "m", "--metadata="}, "path of a JSON file"},
      {{"push", "--url", "http://h", "--name", "iris", "m", "--config="}, "path of a config.yaml"},
      {{"promote", "--url", "http://h", "iris", "2", "--config", "c.yaml"}, "applies to push"},
      {{"push", "--url", "http://h", "--name", "iris", "m", "--allow-signature-change=yes"},
       "takes no value"},
      {{"push", "--url", "http://h", "--name", "iris", "m", "--alias", "x"},
       "applies to promote, rollback and split, not to push"},
      {{"show", "--url", "http://h", "iris", "--name", "x"}, "applies to push, not to show"},
      {{"split", "--url", "http://h", "iris", "--metadata", "m.json", "1=1", "2=1"},
       "applies to push"},
      {{"split", "--url", "http://h"}, "takes NAME and VERSION=WEIGHT pairs"},
      {{"split", "--url", "http://h", "iris"}, "at least two VERSION=WEIGHT pairs"},
      {{"split", "--url", "http://h", "iris", "3=100"}, "at least two"},
      {{"split", "--url", "http://h", "iris", "3=90", "3=10"}, "version 3 is given twice"},
      {{"split", "--url", "http://h", "iris", "3=90", "4=0"}, "invalid split '4=0'"},
      {{"split", "--url", "http://h", "iris", "3=90", "4"}, "expected VERSION=WEIGHT"},
      {{"split", "--url", "http://h", "3=90", "4=10"}, "takes NAME first"},
      {{"shadow", "--url", "http://h", "iris", "4"}, "needs --percent P (1 to 100), or --off"},
      {{"shadow", "--url", "http://h", "iris", "4", "--percent", "0"}, "from 1 to 100"},
      {{"shadow", "--url", "http://h", "iris", "4", "--percent", "101"}, "from 1 to 100"},
      {{"shadow", "--url", "http://h", "iris", "4", "--percent", "-5"}, "from 1 to 100"},
      {{"shadow", "--url", "http://h", "iris", "4", "--percent", "20%"}, "from 1 to 100"},
      {{"shadow", "--url", "http://h", "iris", "4", "--percent="}, "from 1 to 100"},
      {{"shadow", "--url", "http://h", "iris", "4", "--percent"}, "needs a value"},
      {{"shadow", "--url", "http://h", "iris", "--percent", "20"}, "takes NAME and VERSION, got 1"},
      {{"shadow", "--url", "http://h", "iris", "0", "--percent", "20"}, "positive whole number"},
      {{"shadow", "--url", "http://h", "iris", "--off", "--percent", "20"},
       "--off and --percent exclude each other"},
      {{"shadow", "--url", "http://h", "iris", "4", "--off", "--percent", "20"},
       "--off and --percent exclude each other"},
      {{"shadow", "--url", "http://h", "--off"}, "takes NAME, got 0"},
      {{"shadow", "--url", "http://h", "iris", "--off=yes"}, "takes no value"},
      {{"shadow", "--url", "http://h", "iris", "--off", "--off"}, "given twice"},
      {{"shadow", "--url", "http://h", "iris", "4", "--percent", "20", "--alias", "staging"},
       "applies to promote, rollback and split, not to shadow"},
      {{"promote", "--url", "http://h", "iris", "4", "--percent", "20"},
       "applies to shadow, not to promote"},
      {{"show", "--url", "http://h", "iris", "--off"}, "applies to shadow, not to show"},
      {{"baseline", "--url", "http://h", "iris"}, "exactly one of --from-window, --file FILE"},
      {{"baseline", "--url", "http://h", "iris", "--from-window", "--clear"}, "exactly one of"},
      {{"baseline", "--url", "http://h", "iris", "--from-window", "--file", "p.json"},
       "exactly one of"},
      {{"baseline", "--url", "http://h", "--from-window"}, "takes NAME[:VERSION], got 0"},
      {{"baseline", "--url", "http://h", "iris", "2", "--from-window"}, "got 2"},
      {{"baseline", "--url", "http://h", "iris:", "--from-window"}, "VERSION after ':'"},
      {{"baseline", "--url", "http://h", "iris", "--from-window=yes"}, "takes no value"},
      {{"baseline", "--url", "http://h", "iris", "--file="}, "path of a JSON profile"},
      {{"promote", "--url", "http://h", "iris", "4", "--from-window"},
       "applies to baseline, not to promote"},
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

TEST(ModelsCommandTest, ShadowUsageErrorsExitTwoBeforeAnyConnection) {
  // Port 1 would refuse: exit 2, not 1, shows nothing was sent.
  const std::vector<std::string_view> cases[] = {
      {"shadow", "--url", "http://127.0.0.1:1", "iris", "4"},
      {"shadow", "--url", "http://127.0.0.1:1", "iris", "4", "--percent", "101"},
      {"shadow", "--url", "http://127.0.0.1:1", "iris", "4", "5", "--off"},
      {"shadow", "--url", "http://127.0.0.1:1", "iris", "--off", "--percent", "5"},
  };
  for (const auto& args : cases) {
    Outcome run = RunCommand(args);
    EXPECT_EQ(run.exit_code, kExitUsage) << run.err;
    EXPECT_EQ(run.out, "");
    EXPECT_NE(run.err.find("berth models shadow   --url URL NAME [VERSION] --off"),
              std::string::npos)
        << run.err;
  }
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

TEST(ModelsCommandTest, PushFilesThatCannotBeUsedExitOneBeforeAnyConnection) {
  // Port 1 on loopback: nothing listens, so a command that got as far as
  // connecting would say "connection refused" instead.
  const std::string dir = ::testing::TempDir();
  const std::string missing = dir + "/berth_no_such_artifact.onnx";
  Outcome run = RunCommand({"push", "--url", "http://127.0.0.1:1", "--name", "iris", missing});
  EXPECT_EQ(run.exit_code, kExitFailure);
  EXPECT_EQ(run.out, "");
  EXPECT_NE(run.err.find("cannot read the artifact '" + missing + "'"), std::string::npos)
      << run.err;

  const std::string artifact = dir + "/berth_push_artifact.onnx";
  const std::string metadata = dir + "/berth_push_metadata.json";
  const auto write = [](const std::string& path, const std::string& text) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr) << path;
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  };
  write(artifact, "bytes");
  const std::pair<std::string, const char*> bad_metadata[] = {
      {"[1, 2]", "metadata must be a JSON object"},
      {"\"f1\"", "metadata must be a JSON object"},
      {"{\"f1\": 0.9}", "metadata has an unknown field 'f1'"},
      {"{\"metrics\": {\"accuracy\": 2}}", "metadata.metrics.accuracy must be a number in [0, 1]"},
      {"{\"f1\": 0.9", "is not valid JSON"},
      {"{} {}", "is not valid JSON"},
      {"", "is not valid JSON"},
      {"{\"a\": \"\xff\"}", "is not valid JSON"},
      {"{\"a\": \"" + std::string((1 << 20) + 1, 'x') + "\"}", "over 1 MiB"},
  };
  for (const auto& [text, why] : bad_metadata) {
    write(metadata, text);
    run = RunCommand({"push", "--url", "http://127.0.0.1:1", "--name", "iris", artifact,
                      "--metadata", metadata});
    EXPECT_EQ(run.exit_code, kExitFailure) << text.substr(0, 40);
    EXPECT_EQ(run.out, "");
    EXPECT_NE(run.err.find("the metadata file '" + metadata + "'"), std::string::npos) << run.err;
    EXPECT_NE(run.err.find(why), std::string::npos) << run.err.substr(0, 300);
  }
  // Good files get as far as the connection.
  write(metadata, "{\"metrics\": {\"f1\": 0.91}}\n");
  run = RunCommand({"push", "--url", "http://127.0.0.1:1", "--name", "iris", artifact,
                    "--metadata", metadata});
  EXPECT_EQ(run.exit_code, kExitFailure);
  EXPECT_NE(run.err.find("connection refused"), std::string::npos) << run.err;
  std::remove(artifact.c_str());
  std::remove(metadata.c_str());
}

TEST(ModelsCommandTest, BadUrlExitsOneBeforeAnyConnection) {
  Outcome run = RunCommand({"list", "--url", "ftp://127.0.0.1:8000"});
  EXPECT_EQ(run.exit_code, kExitFailure);
  EXPECT_NE(run.err.find("unsupported scheme 'ftp'"), std::string::npos) << run.err;
  run = RunCommand({"list", "--url", "localhost:8000"});
  EXPECT_EQ(run.exit_code, kExitFailure);
  EXPECT_NE(run.err.find("expected http://HOST[:PORT]"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace berth::cli

namespace berth::cli {
namespace {

TEST(ModelsCommandTest, BaselineAsTheIssueWritesIt) {
  auto c = ParseModelsCommand({"baseline", "--url", "http://h:1", "iris:3", "--from-window",
                               "--reason", "reference week"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->verb, ModelsVerb::kBaseline);
  EXPECT_EQ(c->model, "iris");
  EXPECT_EQ(c->version_selector, "3");
  EXPECT_TRUE(c->from_window);
  EXPECT_EQ(c->reason, std::optional<std::string>("reference week"));
  c = ParseModelsCommand({"baseline", "--url", "http://h:1", "iris:production", "--file",
                          "profile.json"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->version_selector, "production");
  EXPECT_EQ(c->baseline_file, std::optional<std::string>("profile.json"));
  c = ParseModelsCommand({"baseline", "--url", "http://h:1", "iris", "--clear"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->version_selector, "");
  EXPECT_TRUE(c->clear);
}

}  // namespace
}  // namespace berth::cli
