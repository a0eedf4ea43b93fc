#include "monitoring/drift/drift_window.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <tuple>

#include "monitoring/drift/drift_stats.h"

namespace berth::drift {

void Window::Add(SampledRows sample) {
  const size_t rows = static_cast<size_t>(std::max<int64_t>(sample.rows, 0));
  sample.features.resize(kinds_.size());
  for (size_t c = 0; c < kinds_.size(); ++c) {
    // Each column gets exactly `rows` entries, "missing" (NaN, "") where its
    // tensor had fewer.
    FeatureValues& v = sample.features[c];
    if (kinds_[c] == FeatureKind::kNumeric) {
      v.numbers.resize(rows, std::numeric_limits<double>::quiet_NaN());
      numbers_[c].insert(numbers_[c].end(), v.numbers.begin(), v.numbers.end());
    } else {
      v.categories.resize(rows);
      for (std::string& x : v.categories) categories_[c].push_back(std::move(x));
    }
  }
  for (size_t r = 0; r < rows; ++r) rows_.push_back(sample.unix_ms);
  Trim(sample.unix_ms);
}

void Window::Trim(int64_t now_unix_ms) {
  const int64_t oldest =
      config_.window_seconds > 0 ? now_unix_ms - config_.window_seconds * 1000 : INT64_MIN;
  while (!rows_.empty() &&
         (static_cast<int64_t>(rows_.size()) > config_.window_count || rows_.front() < oldest)) {
    rows_.pop_front();
    for (auto& n : numbers_) {
      if (n.size() > rows_.size()) n.pop_front();
    }
    for (auto& c : categories_) {
      if (c.size() > rows_.size()) c.pop_front();
    }
  }
}

std::vector<double> Window::Numbers(size_t c) const {
  return std::vector<double>(numbers_[c].begin(), numbers_[c].end());
}

std::vector<std::string> Window::Categories(size_t c) const {
  return std::vector<std::string>(categories_[c].begin(), categories_[c].end());
}

std::pair<int64_t, int64_t> Window::Span() const {
  if (rows_.empty()) return {0, 0};
  return {rows_.front(), rows_.back()};
}

FeatureReport CompareFeature(const FeatureProfile& profile, std::vector<double> numbers,
                             const std::vector<std::string>& categories,
                             const MonitoringConfig& config) {
  FeatureReport r;
  r.name = profile.name;
  r.kind = profile.kind;
  if (profile.kind == FeatureKind::kNumeric) {
    auto end = std::partition(numbers.begin(), numbers.end(),
                              [](double v) { return std::isfinite(v); });
    r.missing = numbers.end() - end;
    numbers.erase(end, numbers.end());
    r.count = static_cast<int64_t>(numbers.size());
    if (r.count < config.min_window) {
      r.status = "too_small";
      return r;
    }
    std::sort(numbers.begin(), numbers.end());
    double sum = 0;
    for (double v : numbers) sum += v;
    r.mean = sum / static_cast<double>(numbers.size());
    r.psi = Psi(BinCounts(numbers, profile.bins), profile.counts);
    r.ks = KsStatistic(numbers, profile.quantiles);
    r.ks_pvalue = KsPValue(r.ks, r.count);
    r.wasserstein_raw = Wasserstein(numbers, profile.quantiles);
    const double iqr = profile.quantiles[75] - profile.quantiles[25];
    r.wasserstein_scale = profile.std > 0 ? profile.std : iqr > 0 ? iqr : 1;
    r.wasserstein = r.wasserstein_raw / r.wasserstein_scale;
    r.drift = (config.psi_threshold > 0 && r.psi >= config.psi_threshold) ||
              (config.wasserstein_threshold > 0 &&
               r.wasserstein >= config.wasserstein_threshold) ||
              (config.ks_threshold > 0 && r.ks >= config.ks_threshold);
    return r;
  }
  // Categorical: the baseline's categories in order, then the window's new
  // ones (their baseline count is 0).
  std::map<std::string, std::pair<double, double>> table;  // value -> (window, baseline)
  for (const auto& [value, count] : profile.frequencies) {
    table[value].second = static_cast<double>(count);
  }
  for (const std::string& v : categories) {
    if (v.empty()) {
      ++r.missing;
      continue;
    }
    ++r.count;
    // A window cannot grow the table past the bound either.
    if (table.size() >= kMaxCategories && !table.count(v)) continue;
    table[v].first += 1;
  }
  if (r.count < config.min_window) {
    r.status = "too_small";
    return r;
  }
  std::vector<double> window;
  std::vector<double> baseline;
  for (const auto& [value, counts] : table) {
    window.push_back(counts.first);
    baseline.push_back(counts.second);
  }
  r.js = JsDistance(window, baseline);
  std::tie(r.chi_square, r.chi_square_pvalue) = ChiSquare(window, baseline);
  r.drift = config.js_threshold > 0 && r.js >= config.js_threshold;
  return r;
}

}  // namespace berth::drift
