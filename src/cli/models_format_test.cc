#include "cli/models_format.h"

#include <gtest/gtest.h>

#include <string>

namespace berth::cli {
namespace {

std::string Ok(const StatusOr<std::string>& text) {
  EXPECT_TRUE(text.ok()) << text.status().message();
  return text.ok() ? *text : "";
}

TEST(TextTableTest, AlignsColumnsWithoutTrailingSpaces) {
  TextTable table({"A", "LONGER", "C"});
  table.AddRow({"wide cell", "x", ""});
  table.AddRow({"é", "", "last"});
  EXPECT_EQ(table.Render(),
            "A          LONGER  C\n"
            "wide cell  x\n"
            "é                  last\n");
}

TEST(TextTableTest, PadsShortRowsAndDropsExtraCells) {
  TextTable table({"A", "B"});
  table.AddRow({"1"});
  table.AddRow({"1", "2", "3"});
  EXPECT_EQ(table.rows(), 2u);
  EXPECT_EQ(table.Render(), "A  B\n1\n1  2\n");
}

TEST(FormatModelListTest, OneRowPerModel) {
  EXPECT_EQ(Ok(FormatModelList(R"({"models": [
                  {"name": "iris", "aliases": {"production": 2, "staging": 3}, "versions": [1, 2, 3]},
                  {"name": "wine_long_name", "aliases": {}, "versions": [1]}]})")),
            "MODEL           ALIASES                 VERSIONS\n"
            "iris            production=2,staging=3  1,2,3\n"
            "wine_long_name  -                       1\n");
  EXPECT_EQ(Ok(FormatModelList(R"({"models": []})")), "no models\n");
}

TEST(FormatModelListTest, ArchivedAndDeletedColumnsOnlyWhenAModelHasSome) {
  EXPECT_EQ(Ok(FormatModelList(R"({"models": [
                  {"name": "iris", "aliases": {}, "versions": [2], "archived": [3], "deleted": [1]},
                  {"name": "wine", "aliases": {}, "versions": [1], "archived": [],
                   "deleted": []}]})")),
            "MODEL  ALIASES  VERSIONS  ARCHIVED  DELETED\n"
            "iris   -        2         3         1\n"
            "wine   -        1         -         -\n");
  EXPECT_EQ(Ok(FormatModelList(R"({"models": [
                  {"name": "wine", "aliases": {}, "versions": [1], "archived": []}]})")),
            "MODEL  ALIASES  VERSIONS\n"
            "wine   -        1\n");
}

TEST(FormatVersionStatusTest, NamesTheVersionAndItsState) {
  EXPECT_EQ(Ok(FormatVersionStatus(R"({"model": "iris", "version": 3, "state": "ARCHIVED"})",
                                   "archived")),
            "iris: version 3 archived (ARCHIVED)\n");
  EXPECT_EQ(Ok(FormatVersionStatus(R"({"model": "iris", "version": 3, "state": "REGISTERED"})",
                                   "restored")),
            "iris: version 3 restored (REGISTERED)\n");
}

TEST(FormatModelDetailsTest, ShowsStickyKeysOnlyWhenThereAreSome) {
  const std::string json = R"({"name": "iris", "aliases": {"production": 3}, "default_version": 3,
      "splits": {"production": {"3": 90, "4": 10}}, "sticky_keys": {"production": "x-user"},
      "versions": []})";
  EXPECT_NE(Ok(FormatModelDetails(json)).find("sticky keys:      production=x-user\n"),
            std::string::npos);
  EXPECT_EQ(Ok(FormatModelDetails(R"({"name": "iris", "sticky_keys": {}, "versions": []})"))
                .find("sticky keys:"),
            std::string::npos);
}

TEST(FormatModelDetailsTest, ShowsWhatImportAndEvaluationRecorded) {
  const std::string json = R"({"name": "iris", "versions": [
      {"version": 1, "state": "READY", "metadata": {}, "evaluations": []},
      {"version": 2, "state": "READY",
       "metadata": {"metrics": {"accuracy": 0.97, "f1": 0.96},
                    "parity": {"rows": 150, "label_agreement": 1, "max_abs_diff": 1.5e-06,
                               "max_rel_diff": 2e-06, "tolerance": 1e-05, "passed": true},
                    "scan": {"scanner": "berth", "globals": ["sklearn.pipeline.Pipeline"],
                             "trusted": false, "findings": []}},
       "evaluations": [
         {"at": "2026-12-01T10:00:00Z", "by": "ci", "evaluation": {"metrics": {"accuracy": 0.9}, "rows": 30}},
         {"at": "2026-12-01T11:00:00Z", "by": "ci", "evaluation": {"metrics": {"accuracy": 0.95}, "rows": 38}}]},
      {"version": 3, "state": "READY", "metadata": {"parity": {"rows": 10, "passed": false}}}]})";
  const std::string out = Ok(FormatModelDetails(json));
  EXPECT_EQ(out.find("version 1:"), std::string::npos) << out;  // nothing recorded
  EXPECT_NE(out.find("version 2:\n"
                     "  metrics     accuracy=0.97,f1=0.96\n"
                     "  parity      passed: 150 rows, labels agree 1, max |diff| 1.5e-06 "
                     "(tolerance 1e-05)\n"
                     "  scan        berth: 1 globals, 0 findings, trusted false\n"
                     "  evaluated   2026-12-01T11:00:00Z by ci: accuracy=0.95 on 38 rows (latest of 2)\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("version 3:\n  parity      FAILED: 10 rows"), std::string::npos) << out;
}

TEST(FormatModelDetailsTest, ListsTheFilesOfAVersionThatIsADirectory) {
  const std::string a = "sha256:" + std::string(64, 'a');
  const std::string b = "sha256:" + std::string(64, 'b');
  const std::string json = R"({"name": "scaler", "versions": [
      {"version": 1, "state": "READY", "digest": ")" + a + R"(", "size": 10, "format": "onnx"},
      {"version": 2, "state": "READY", "digest": ")" + a + R"(", "size": 2048, "format": "python",
       "files_digest": ")" + b + R"(", "files": [
         {"name": "model.py", "digest": ")" + a + R"(", "size": 2000},
         {"name": "pkg/features.py", "digest": ")" + b + R"(", "size": 48}]}]})";
  const std::string shown = Ok(FormatModelDetails(json));
  EXPECT_NE(shown.find("version 2: 2 files, sha256:bbbbbbbbbbbb (the set)\n"), std::string::npos)
      << shown;
  EXPECT_NE(shown.find("pkg/features.py"), std::string::npos) << shown;
  EXPECT_EQ(shown.find("version 1:"), std::string::npos) << shown;
}

TEST(FormatModelDetailsTest, HeaderThenOneRowPerVersion) {
  const std::string digest = "sha256:" + std::string(64, 'a');
  const std::string json = R"({"name": "iris", "aliases": {"production": 2}, "default_version": 2,
      "versions": [
        {"version": 1, "state": "READY", "reason": "", "digest": ")" + digest + R"(",
         "size": 1536, "format": "onnx", "source": "directory",
         "created_at": "2026-11-30T00:00:00Z", "created_by": "ci", "aliases": [], "metadata": {}},
        {"version": 2, "state": "READY", "reason": "", "digest": ")" + digest + R"(",
         "size": 100, "format": "onnx", "created_at": "2026-11-30T01:00:00Z",
         "aliases": ["production"]}]})";
  EXPECT_EQ(Ok(FormatModelDetails(json)),
            "model:            iris\n"
            "default version:  2\n"
            "aliases:          production=2\n"
            "\n"
            "VERSION  STATE  ALIASES     FORMAT  SIZE     CREATED               DIGEST\n"
            "1        READY  -           onnx    1.5 KiB  2026-11-30T00:00:00Z  sha256:aaaaaaaaaaaa\n"
            "2        READY  production  onnx    100 B    2026-11-30T01:00:00Z  sha256:aaaaaaaaaaaa\n");
}

TEST(FormatModelDetailsTest, ReasonColumnOnlyWhenAVersionHasOne) {
  const std::string text = Ok(FormatModelDetails(R"({"name": "m", "default_version": null,
      "versions": [{"version": 1, "state": "UNAVAILABLE", "reason": "cannot load: bad graph"},
                   {"version": 2, "state": "LOADING", "reason": ""}]})"));
  EXPECT_EQ(text,
            "model:            m\n"
            "default version:  -\n"
            "aliases:          -\n"
            "\n"
            "VERSION  STATE        ALIASES  FORMAT  SIZE  CREATED  DIGEST  REASON\n"
            "1        UNAVAILABLE  -        -       -     -        -       cannot load: bad graph\n"
            "2        LOADING      -        -       -     -        -\n");
  EXPECT_NE(Ok(FormatModelDetails(R"({"name": "m", "versions": []})")).find("no versions\n"),
            std::string::npos);
}

TEST(FormatModelDetailsTest, MemoryColumnOnlyWhenAVersionHoldsSome) {
  const std::string text = Ok(FormatModelDetails(R"({"name": "m", "default_version": 2,
      "versions": [{"version": 1, "state": "REGISTERED", "reason": "", "size": 100},
                   {"version": 2, "state": "READY", "reason": "", "size": 100,
                    "memory_bytes": 1572864}]})"));
  EXPECT_EQ(text,
            "model:            m\n"
            "default version:  2\n"
            "aliases:          -\n"
            "\n"
            "VERSION  STATE       ALIASES  FORMAT  SIZE   MEMORY   CREATED  DIGEST\n"
            "1        REGISTERED  -        -       100 B  -        -        -\n"
            "2        READY       -        -       100 B  1.5 MiB  -        -\n");
}

TEST(FormatHistoryTest, OneRowPerRecordWithNullsAsDashes) {
  EXPECT_EQ(Ok(FormatHistory(R"({"model": "iris", "history": [
      {"id": 1, "at": "2026-11-30T00:00:00Z", "actor": "127.0.0.1", "action": "register",
       "alias": null, "from": null, "to": 1, "reason": ""},
      {"id": 2, "at": "2026-11-30T00:01:00Z", "actor": "127.0.0.1", "action": "promote",
       "alias": "production", "from": null, "to": 1, "reason": "first release"}]})")),
            "ID  AT                    ACTOR      ACTION    ALIAS       FROM  TO  REASON\n"
            "1   2026-11-30T00:00:00Z  127.0.0.1  register  -           -     1\n"
            "2   2026-11-30T00:01:00Z  127.0.0.1  promote   production  -     1   first release\n");
  EXPECT_EQ(Ok(FormatHistory(R"({"model": "iris", "history": []})")), "no history\n");
}

TEST(FormatAliasMoveTest, NamesTheNewAndPreviousVersion) {
  EXPECT_EQ(Ok(FormatAliasMove(
                R"({"model": "iris", "alias": "production", "version": 3, "previous": 2})")),
            "iris: production now points at version 3 (previously 2)\n");
  EXPECT_EQ(Ok(FormatAliasMove(
                R"({"model": "iris", "alias": "staging", "version": 1, "previous": null})")),
            "iris: staging now points at version 1 (previously none)\n");
}

TEST(FormatModelDetailsTest, ShowsSplitsOnlyWhenThereAreSome) {
  const std::string json = R"({"name": "iris", "aliases": {"production": 3}, "default_version": 3,
      "splits": {"production": {"3": 90, "4": 10}}, "versions": []})";
  EXPECT_EQ(Ok(FormatModelDetails(json)),
            "model:            iris\n"
            "default version:  3\n"
            "aliases:          production=3\n"
            "splits:           production={3=90,4=10}\n"
            "\n"
            "no versions\n");
  EXPECT_EQ(Ok(FormatModelDetails(R"({"name": "iris", "splits": {}, "versions": []})"))
                .find("splits:"),
            std::string::npos);
}

TEST(FormatSplitTest, NamesTheWeightsAndThePreviousVersion) {
  EXPECT_EQ(Ok(FormatSplit(
                R"({"model": "iris", "alias": "production", "version": 3, "previous": 2})",
                "3=90 4=10")),
            "iris: production now splits traffic 3=90 4=10 (previously 2)\n");
  EXPECT_EQ(Ok(FormatSplit(
                R"({"model": "iris", "alias": "canary", "version": 1, "previous": null})",
                "1=1 2=1")),
            "iris: canary now splits traffic 1=1 2=1 (previously none)\n");
}

TEST(FormatModelDetailsTest, ShowsTheShadowOnlyWhenThereIsOne) {
  const std::string json = R"({"name": "iris", "aliases": {"production": 3}, "default_version": 3,
      "splits": {}, "shadow": {"version": 4, "percent": 20}, "versions": []})";
  EXPECT_EQ(Ok(FormatModelDetails(json)),
            "model:            iris\n"
            "default version:  3\n"
            "aliases:          production=3\n"
            "shadow:           version 4, 20% of the traffic\n"
            "\n"
            "no versions\n");
  EXPECT_EQ(Ok(FormatModelDetails(R"({"name": "iris", "shadow": null, "versions": []})"))
                .find("shadow:"),
            std::string::npos);
  EXPECT_EQ(Ok(FormatModelDetails(R"({"name": "iris", "versions": []})")).find("shadow:"),
            std::string::npos);
  // A shape this client does not know still prints.
  EXPECT_NE(Ok(FormatModelDetails(R"({"name": "iris", "shadow": {"v": "x"}, "versions": []})"))
                .find("shadow:           v=x\n"),
            std::string::npos);
}

TEST(FormatShadowTest, NamesVersionPercentAndPrevious) {
  EXPECT_EQ(Ok(FormatShadow(R"({"model": "iris", "version": 4, "percent": 20, "previous": 3})")),
            "iris: version 4 shadows 20% of the traffic (previously 3)\n");
  EXPECT_EQ(
      Ok(FormatShadow(R"({"model": "iris", "version": 4, "percent": 100, "previous": null})")),
      "iris: version 4 shadows 100% of the traffic (previously none)\n");
  EXPECT_EQ(Ok(FormatShadow(R"({"model": "iris", "version": null, "percent": 0, "previous": 4})")),
            "iris: shadow off (previously 4)\n");
  EXPECT_EQ(
      Ok(FormatShadow(R"({"model": "iris", "version": null, "percent": 0, "previous": null})")),
      "iris: shadow off (previously none)\n");
  EXPECT_FALSE(FormatShadow("[]").ok());
}

TEST(FormatPushTest, VersionAloneOnTheLastLine) {
  EXPECT_EQ(Ok(FormatPush(R"({"model": "iris", "version": 7})")),
            "iris: pushed as version 7\n7\n");
  for (const char* bad : {R"({"model": "iris"})", R"({"model": "iris", "version": "7"})",
                          R"({"model": "iris", "version": 0})", R"({"version": 1.5})", "[]",
                          "not json"}) {
    EXPECT_FALSE(FormatPush(bad).ok()) << bad;
  }
}

TEST(FormatTest, ServerTextCannotDriveTheTerminal) {
  const std::string text = Ok(FormatHistory(R"({"history": [
      {"id": 1, "action": "promote", "reason": "ok\u001b[2J\nforged line\u0007"}]})"));
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  EXPECT_EQ(text.find('\x07'), std::string::npos) << text;
  EXPECT_NE(text.find("ok?[2J?forged line?"), std::string::npos) << text;
  EXPECT_EQ(ErrorMessage(404, R"({"error": "no model '\u001b]0;x'"})"), "no model '?]0;x' (HTTP 404)");
}

TEST(FormatTest, UnexpectedTypesPrintInsteadOfFailing) {
  EXPECT_EQ(Ok(FormatModelList(R"({"models": [
                  {"name": 7, "aliases": {"production": {"3": 90, "4": 10}}, "versions": "all"},
                  {"name": "x", "aliases": [true, 1.5], "versions": [[1]]}]})")),
            "MODEL  ALIASES                 VERSIONS\n"
            "7      production={3=90,4=10}  all\n"
            "x      true,1.5                [1]\n");
}

TEST(FormatTest, DeeplyNestedAnswersNeitherOverflowTheStackNorFlood) {
  constexpr int kDepth = 1000000;
  const std::string deep = std::string(kDepth, '[') + std::string(kDepth, ']');
  const std::string text = Ok(FormatModelList(R"({"models": [{"name": "m", "versions": )" + deep +
                                              "}]}"));
  EXPECT_LT(text.size(), 200u) << text;
  EXPECT_NE(text.find("[...]"), std::string::npos) << text;
  EXPECT_EQ(ErrorMessage(500, R"({"error": )" + deep + "}").substr(0, 10), "HTTP 500: ");
}

TEST(FormatTest, AnswersThatAreNotTheExpectedJsonAreErrors) {
  for (const char* bad : {"", "not json", "[1,2]", "{\"models\": 3}", "{}"}) {
    StatusOr<std::string> text = FormatModelList(bad);
    ASSERT_FALSE(text.ok()) << bad;
    EXPECT_NE(text.status().message().find("the server's answer"), std::string::npos)
        << text.status().message();
  }
  EXPECT_FALSE(FormatModelDetails("{\"name\": \"iris\"}").ok());
  EXPECT_FALSE(FormatHistory("{\"model\": \"iris\"}").ok());
  EXPECT_FALSE(FormatAliasMove("null").ok());
}

TEST(ErrorMessageTest, ServerMessageElseStatusAndExcerpt) {
  EXPECT_EQ(ErrorMessage(404, R"({"error": "unknown model 'nope'"})"),
            "unknown model 'nope' (HTTP 404)");
  EXPECT_EQ(ErrorMessage(502, "<html>Bad Gateway</html>"), "HTTP 502: <html>Bad Gateway</html>");
  EXPECT_EQ(ErrorMessage(500, ""), "HTTP 500 with an empty body");
  EXPECT_EQ(ErrorMessage(400, R"({"error": 3})"), R"(HTTP 400: {"error": 3})");
  EXPECT_EQ(ErrorMessage(500, std::string(1000, 'x')), "HTTP 500: " + std::string(200, 'x') + "...");
}

}  // namespace
}  // namespace berth::cli
