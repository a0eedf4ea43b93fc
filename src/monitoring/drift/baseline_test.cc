#include "monitoring/drift/baseline.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "monitoring/drift/drift_window.h"

namespace berth::drift {
namespace {

std::string Quantiles(double from, double to) {
  std::string out = "[";
  for (int i = 0; i <= 100; ++i) {
    out += (i ? "," : "") + std::to_string(from + (to - from) * i / 100);
  }
  return out + "]";
}

std::string Numeric(const std::string& name, const std::string& extra = "") {
  return R"({"name": ")" + name + R"(", "input": "X", "column": 0, "kind": "numeric",
    "count": 10, "missing": 0, "mean": 0.5, "std": 0.25, "min": 0, "max": 1,
    "quantiles": )" + Quantiles(0, 1) + R"(, "bins": [0, 0.5, 1], "counts": [5, 5])" + extra + "}";
}

std::string Profile(const std::string& features, const std::string& rest = "") {
  return R"({"format": "berth-baseline/1", "rows": 10, "features": [)" + features + "]" + rest +
         "}";
}

TEST(BaselineTest, ParsesEveryField) {
  auto p = ParseBaseline(Profile(
      Numeric("x0") + R"(, {"name": "c", "input": "S", "column": 1, "kind": "categorical",
        "count": 4, "missing": 1, "frequencies": {"a": 3, "b": 1}})",
      R"(, "prediction": {"output": "label", "kind": "categorical", "count": 4,
        "frequencies": {"0": 2, "1": 2}})"));
  ASSERT_TRUE(p.ok()) << p.status().message();
  ASSERT_EQ(p->features.size(), 2u);
  EXPECT_EQ(p->features[0].name, "x0");
  EXPECT_EQ(p->features[0].tensor, "X");
  EXPECT_EQ(p->features[0].quantiles.size(), 101u);
  EXPECT_EQ(p->features[0].counts, (std::vector<int64_t>{5, 5}));
  EXPECT_EQ(p->features[1].kind, FeatureKind::kCategorical);
  EXPECT_EQ(p->features[1].column, 1);
  EXPECT_EQ(p->features[1].frequencies.at("a"), 3);
  ASSERT_TRUE(p->prediction.has_value());
  EXPECT_EQ(p->prediction->tensor, "label");
  EXPECT_EQ(p->prediction->name, "label");

  // What it writes reads back the same.
  auto again = ParseBaseline(BaselineToJson(*p));
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(BaselineToJson(*again), BaselineToJson(*p));
}

TEST(BaselineTest, RefusesMalformedProfilesNamingTheField) {
  struct Case {
    std::string json;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"[]", "must be a JSON object"},
      {"{", "not valid JSON"},
      {R"({"format": "other", "features": []})", "format"},
      {R"({"format": "berth-baseline/1"})", "features"},
      {Profile(Numeric("a") + "," + Numeric("a")), "features[1].name"},
      {Profile(R"({"name": "a", "input": "X", "kind": "numeric", "count": 1})"),
       "features[0].mean"},
      {Profile(R"({"name": "a", "input": "X", "kind": "text", "count": 1})"),
       "features[0].kind"},
      {Profile(R"({"name": "", "input": "X", "kind": "numeric", "count": 1})"),
       "features[0].name"},
      {Profile(R"({"name": "a", "input": "X", "kind": "numeric", "count": -1})"),
       "features[0].count"},
      {Profile(R"({"name": "a", "input": "X", "column": 1e9, "kind": "numeric", "count": 1})"),
       "features[0].column"},
      {Profile(R"({"name": "a", "input": "X", "kind": "categorical", "count": 1,
                   "frequencies": {"x": -2}})"),
       "features[0].frequencies"},
  };
  for (const Case& c : cases) {
    auto p = ParseBaseline(c.json);
    ASSERT_FALSE(p.ok()) << c.json;
    EXPECT_EQ(p.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(p.status().message().find(c.field), std::string::npos)
        << p.status().message() << " does not name " << c.field;
  }
  // Quantiles, bins and counts are checked against each other.
  std::string bad = Profile(Numeric("a"));
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = bad;
    s.replace(s.find(from), from.size(), to);
    return ParseBaseline(s);
  };
  EXPECT_FALSE(replace("\"bins\": [0, 0.5, 1]", "\"bins\": [0, 1, 0.5]").ok());
  EXPECT_FALSE(replace("\"counts\": [5, 5]", "\"counts\": [5]").ok());
  EXPECT_FALSE(replace("\"quantiles\": [0.0", "\"quantiles\": [2.0").ok());
  EXPECT_FALSE(replace("\"std\": 0.25", "\"std\": -1").ok());
  EXPECT_TRUE(replace("\"std\": 0.25", "\"std\": 0").ok());

  std::string many;
  for (size_t i = 0; i <= kMaxFeatures; ++i) many += (i ? "," : "") + Numeric("f" + std::to_string(i));
  EXPECT_FALSE(ParseBaseline(Profile(many)).ok());
}

TEST(BaselineTest, FromMetadata) {
  EXPECT_EQ(BaselineFromMetadata("{}").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(BaselineFromMetadata(R"({"baseline": null})").status().code(),
            Status::Code::kNotFound);
  EXPECT_EQ(BaselineFromMetadata(R"({"baseline": {"format": 1}})").status().code(),
            Status::Code::kInvalidArgument);
  auto p = BaselineFromMetadata(R"({"f1": 0.9, "baseline": )" + Profile(Numeric("a")) + "}");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->features.size(), 1u);
}

TEST(BaselineTest, ProfileNumericIsNumpys) {
  // 0..100 and a NaN: quantiles are the values, deciles the bins,
  // numpy.histogram's counts (the last bin closed), population std.
  std::vector<double> values;
  for (int i = 100; i >= 0; --i) values.push_back(i);
  values.push_back(std::nan(""));
  FeatureProfile f;
  ProfileNumeric(values, &f);
  EXPECT_EQ(f.count, 101);
  EXPECT_EQ(f.missing, 1);
  EXPECT_DOUBLE_EQ(f.mean, 50);
  EXPECT_NEAR(f.std, std::sqrt(850.0), 1e-12);
  ASSERT_EQ(f.quantiles.size(), 101u);
  EXPECT_DOUBLE_EQ(f.quantiles[37], 37);
  EXPECT_EQ(f.bins, (std::vector<double>{0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100}));
  EXPECT_EQ(f.counts, (std::vector<int64_t>{10, 10, 10, 10, 10, 10, 10, 10, 10, 11}));
  // A constant feature still has two edges.
  std::vector<double> constant(5, 3.0);
  ProfileNumeric(constant, &f);
  EXPECT_EQ(f.bins, (std::vector<double>{3, 4}));
  EXPECT_EQ(f.counts, (std::vector<int64_t>{5}));
}

TEST(DriftWindowTest, TrimsByCountAndTime) {
  MonitoringConfig config;
  config.window_count = 5;
  config.window_seconds = 10;
  Window w({FeatureKind::kNumeric, FeatureKind::kCategorical}, config);
  SampledRows s;
  s.unix_ms = 1000;
  s.rows = 3;
  s.features.resize(2);
  s.features[0].numbers = {1, 2, 3};
  s.features[1].categories = {"a", "b"};  // one short: "" (missing)
  w.Add(s);
  EXPECT_EQ(w.count(), 3);
  EXPECT_EQ(w.Categories(1), (std::vector<std::string>{"a", "b", ""}));
  s.unix_ms = 2000;
  s.features[0].numbers = {4, 5, 6};
  s.features[1].categories = {"c", "d", "e"};
  w.Add(s);
  EXPECT_EQ(w.count(), 5);  // the oldest row went
  EXPECT_EQ(w.Numbers(0), (std::vector<double>{2, 3, 4, 5, 6}));
  EXPECT_EQ(w.Span(), (std::pair<int64_t, int64_t>{1000, 2000}));
  w.Trim(11'500);  // 10 s after the first sample: its rows go
  EXPECT_EQ(w.count(), 3);
  EXPECT_EQ(w.Categories(1), (std::vector<std::string>{"c", "d", "e"}));
}

TEST(DriftWindowTest, CompareFeatureDecidesOnEffectSizeAboveMinWindow) {
  FeatureProfile f;
  std::vector<double> base;
  for (int i = 0; i < 1000; ++i) base.push_back(i / 1000.0);
  ProfileNumeric(base, &f);
  MonitoringConfig config;
  config.min_window = 50;
  std::vector<double> same(base.begin(), base.begin() + 1000);
  std::vector<double> shifted;
  for (double v : base) shifted.push_back(v + 0.5);
  std::vector<double> few(base.begin(), base.begin() + 10);

  FeatureReport r = CompareFeature(f, same, {}, config);
  EXPECT_EQ(r.status, "ok");
  EXPECT_FALSE(r.drift);
  EXPECT_NEAR(r.psi, 0, 1e-9);
  r = CompareFeature(f, shifted, {}, config);
  EXPECT_TRUE(r.drift);
  EXPECT_GT(r.psi, 0.2);
  EXPECT_NEAR(r.wasserstein_raw, 0.5, 1e-3);
  EXPECT_NEAR(r.wasserstein, 0.5 / f.std, 1e-2);
  EXPECT_NEAR(r.ks, 0.5, 2e-3);
  r = CompareFeature(f, few, {}, config);
  EXPECT_EQ(r.status, "too_small");
  EXPECT_FALSE(r.drift);
  EXPECT_EQ(r.count, 10);

  FeatureProfile c;
  const std::vector<std::string> balanced = {"a", "b", "a", "b"};
  ProfileCategorical(balanced, &c);
  config.min_window = 4;
  r = CompareFeature(c, {}, {"a", "a", "a", "b"}, config);
  EXPECT_NEAR(r.js, 0.18390779094047432, 1e-12);  // jensenshannon([3, 1], [1, 1])
  EXPECT_TRUE(r.drift);                            // over js_threshold 0.1
  r = CompareFeature(c, {}, {"a", "b", "b", "a", ""}, config);
  EXPECT_EQ(r.missing, 1);
  EXPECT_DOUBLE_EQ(r.js, 0);
  EXPECT_FALSE(r.drift);
}

}  // namespace
}  // namespace berth::drift
