// One model version's sliding window of sampled values, feature by feature,
// and the drift report computed from it against the version's baseline.
// Not thread-safe: the drift monitor (drift_monitor.h) guards each window.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "core/model_config.h"
#include "monitoring/drift/baseline.h"

namespace berth::drift {

// Where one feature's values are read: a tensor and a column of its last
// dimension.
struct FeatureSource {
  std::string name;
  std::string tensor;
  int64_t column = 0;
  FeatureKind kind = FeatureKind::kNumeric;
};

// One feature's values from one sampled request: numbers (NaN: missing) or
// category texts, as its kind says.
struct FeatureValues {
  std::vector<double> numbers;
  std::vector<std::string> categories;
};

// The values of one sampled request: its features' (in the plan's order),
// then the prediction's when the plan has one; `rows` the request's rows.
struct SampledRows {
  int64_t unix_ms = 0;
  int64_t rows = 0;
  std::vector<FeatureValues> features;
};

struct FeatureReport {
  std::string name;
  FeatureKind kind = FeatureKind::kNumeric;
  int64_t count = 0;    // values in the window, missing ones excluded
  int64_t missing = 0;
  // "ok", or "too_small" (fewer than min_window values: drift is false).
  std::string status = "ok";
  bool drift = false;
  // Numeric.
  double psi = 0;
  double wasserstein = 0;  // normalised: raw / wasserstein_scale
  double wasserstein_raw = 0;
  double wasserstein_scale = 1;  // the baseline's std, else its IQR, else 1
  double ks = 0;
  double ks_pvalue = 1;
  double mean = 0;
  // Categorical.
  double js = 0;
  double chi_square = 0;
  double chi_square_pvalue = 1;
};

struct DriftReport {
  // "ok", "too_small" (a window below min_window), "no_baseline".
  std::string status = "ok";
  std::string baseline_source;  // "store", "metadata" or empty
  int64_t count = 0;            // rows in the window
  int64_t start_ms = 0;         // Unix ms of its oldest and newest rows; 0 if empty
  int64_t end_ms = 0;
  bool drift = false;           // any feature or the prediction drifted
  std::vector<FeatureReport> features;
  std::optional<FeatureReport> prediction;
};

// The statistics of one feature's window values against its profile, and
// its drift decision under `config` (drift_stats.h; docs/monitoring.md).
FeatureReport CompareFeature(const FeatureProfile& profile, std::vector<double> numbers,
                             const std::vector<std::string>& categories,
                             const MonitoringConfig& config);

class Window {
 public:
  // `kinds`: the kind of each feature (and the prediction) a sample carries.
  Window(std::vector<FeatureKind> kinds, MonitoringConfig config)
      : kinds_(std::move(kinds)), config_(config) {}

  // Appends a sample (its feature count must be `columns`) and trims.
  void Add(SampledRows sample);
  // Drops rows beyond window_count and older than window_seconds.
  void Trim(int64_t now_unix_ms);

  int64_t count() const { return static_cast<int64_t>(rows_.size()); }
  const MonitoringConfig& config() const { return config_; }
  // The values of column `c` now in the window, oldest first.
  std::vector<double> Numbers(size_t c) const;
  std::vector<std::string> Categories(size_t c) const;
  // Unix ms of the oldest and newest rows (0, 0 if empty).
  std::pair<int64_t, int64_t> Span() const;

 private:
  // One entry per row: its time; a column's deque has one value per row
  // (NaN or "" where its tensor had none), so all trim alike.
  std::vector<FeatureKind> kinds_;
  MonitoringConfig config_;
  std::deque<int64_t> rows_;
  std::vector<std::deque<double>> numbers_ = std::vector<std::deque<double>>(kinds_.size());
  std::vector<std::deque<std::string>> categories_ =
      std::vector<std::deque<std::string>>(kinds_.size());
};

}  // namespace berth::drift
