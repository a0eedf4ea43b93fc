#include "registry/version_metadata.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace berth {
namespace {

using ::testing::HasSubstr;

std::string ErrorOf(std::string_view json) {
  StatusOr<std::string> checked = CheckVersionMetadata(json);
  EXPECT_FALSE(checked.ok()) << json;
  return checked.ok() ? "" : checked.status().message();
}

TEST(VersionMetadataTest, EveryDocumentedFieldIsAcceptedAndCompacted) {
  const std::string full = R"({
    "description": "iris, retrained weekly", "tags": {"team": "growth"},
    "task": "classification", "framework": "scikit-learn", "estimator": "LogisticRegression",
    "trained_at": "2026-11-30T12:00:00.123+01:00",
    "dataset": {"name": "iris", "digest": "sha256:)" + std::string(64, 'a') + R"(",
                "uri": "s3://bucket/iris.csv", "rows": 112},
    "feature_names": ["a", "b"], "class_labels": [0, "x"], "class_names": ["setosa"],
    "metrics": {"accuracy": 1, "f1": 0.5, "roc_auc": 0.9, "log_loss": 0.1, "r2": -3.5,
                "rmse": 2.0, "mae": 1.5, "f1_macro": 0.7, "custom": -1e9},
    "parity": {"rows": 100, "label_agreement": 1.0, "max_abs_diff": 1e-7,
               "max_rel_diff": 2e-7, "tolerance": 1e-5, "passed": true},
    "lineage": {"source_digest": "sha256:)" + std::string(64, '0') + R"(",
                "source_format": "pickle", "converters": {"skl2onnx": "1.20.0"},
                "parent_version": 3},
    "scan": {"scanner": "allow-list", "globals": ["sklearn.linear_model.LogisticRegression"],
             "trusted": false, "findings": []},
    "baseline": {"format": "berth-baseline/1", "rows": 112, "features": []},
    "extra": {"anything": [1, {"nested": null}]}
  })";
  StatusOr<std::string> checked = CheckVersionMetadata(full);
  ASSERT_TRUE(checked.ok()) << checked.status().ToString();
  EXPECT_EQ(checked->find('\n'), std::string::npos);
  EXPECT_THAT(*checked, HasSubstr(R"("trained_at":"2026-11-30T12:00:00.123+01:00")"));
  EXPECT_EQ(*CheckVersionMetadata("{}"), "{}");
}

TEST(VersionMetadataTest, ErrorsNameTheFieldAndWhatItMustBe) {
  EXPECT_EQ(ErrorOf(R"({"f1": 0.9})"),
            "metadata has an unknown field 'f1' (known: description, tags, task, framework, "
            "estimator, trained_at, dataset, feature_names, class_labels, class_names, metrics, "
            "parity, lineage, scan, baseline, extra)");
  EXPECT_EQ(ErrorOf(R"({"metrics": {"accuracy": 1.5}})"),
            "metadata.metrics.accuracy must be a number in [0, 1]");
  EXPECT_EQ(ErrorOf(R"({"metrics": {"rmse": -1}})"), "metadata.metrics.rmse must be a number >= 0");
  EXPECT_EQ(ErrorOf(R"({"metrics": {"r2": 1.5}})"), "metadata.metrics.r2 must be a number <= 1");
  EXPECT_EQ(ErrorOf(R"({"metrics": {"other": "high"}})"), "metadata.metrics.other must be a number");
  EXPECT_THAT(ErrorOf(R"({"trained_at": "yesterday"})"),
              HasSubstr("metadata.trained_at must be an RFC 3339 time"));
  EXPECT_THAT(ErrorOf(R"({"trained_at": "2026-13-01T00:00:00Z"})"), HasSubstr("RFC 3339"));
  EXPECT_THAT(ErrorOf(R"({"trained_at": "2026-11-01T00:00:00"})"), HasSubstr("RFC 3339"));
  EXPECT_THAT(ErrorOf(R"({"dataset": {"digest": "md5:abc"}})"),
              HasSubstr("metadata.dataset.digest must be \"sha256:\""));
  EXPECT_THAT(ErrorOf(R"({"dataset": {"rows": -1}})"),
              HasSubstr("metadata.dataset.rows must be an integer >= 0"));
  EXPECT_THAT(ErrorOf(R"({"dataset": {"size": 1}})"),
              HasSubstr("metadata.dataset has an unknown field 'size'"));
  EXPECT_THAT(ErrorOf(R"({"tags": {"a": 1}})"), HasSubstr("metadata.tags.a must be a string"));
  EXPECT_THAT(ErrorOf(R"({"feature_names": ["a", 2]})"),
              HasSubstr("metadata.feature_names[1] must be a string"));
  EXPECT_THAT(ErrorOf(R"({"task": "clustering"})"), HasSubstr("metadata.task must be"));
  EXPECT_THAT(ErrorOf(R"({"parity": {"passed": "yes"}})"),
              HasSubstr("metadata.parity.passed must be true or false"));
  EXPECT_THAT(ErrorOf(R"({"baseline": {"format": "v0"}})"),
              HasSubstr("metadata.baseline.format must be \"berth-baseline/1\""));
  EXPECT_THAT(ErrorOf(R"({"extra": []})"), HasSubstr("metadata.extra must be an object"));
}

TEST(VersionMetadataTest, MalformedOrHostileJsonIsRefusedWithoutCrashing) {
  EXPECT_THAT(ErrorOf("[]"), HasSubstr("must be a JSON object"));
  EXPECT_THAT(ErrorOf("{"), HasSubstr("is not valid JSON"));
  EXPECT_THAT(ErrorOf("{} {}"), HasSubstr("is not valid JSON"));
  EXPECT_THAT(ErrorOf(R"({"metrics": {"f1": NaN}})"), HasSubstr("is not valid JSON"));
  EXPECT_THAT(ErrorOf("{\"description\": \"\xff\"}"), HasSubstr("is not valid JSON"));
  // Deep nesting under the free-form field: refused, not a stack overflow.
  std::string deep = R"({"extra": )" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_THAT(ErrorOf(deep), HasSubstr("nests deeper than 32 levels"));
}

TEST(VersionMetadataTest, AnEvaluationNeedsMetricsAndTakesADatasetAndRows) {
  StatusOr<std::string> ok =
      CheckEvaluation(R"({"metrics": {"accuracy": 0.97}, "dataset": {"name": "holdout"},
                          "rows": 38})");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(*ok, R"({"metrics":{"accuracy":0.97},"dataset":{"name":"holdout"},"rows":38})");
  EXPECT_EQ(CheckEvaluation(R"({"rows": 3})").status().message(),
            "evaluation needs \"metrics\"");
  EXPECT_THAT(CheckEvaluation(R"({"metrics": {"f1": 2}})").status().message(),
              HasSubstr("evaluation.metrics.f1 must be a number in [0, 1]"));
  EXPECT_THAT(CheckEvaluation(R"({"metrics": {}, "when": 1})").status().message(),
              HasSubstr("evaluation has an unknown field 'when'"));
}

}  // namespace
}  // namespace berth
