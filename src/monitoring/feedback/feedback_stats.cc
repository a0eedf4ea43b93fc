#include "monitoring/feedback/feedback_stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>

namespace berth::feedback {
namespace {

struct Counts {
  int64_t tp = 0;
  int64_t fp = 0;
  int64_t fn = 0;
};

double Ratio(int64_t num, int64_t den) {
  return den == 0 ? 0.0 : static_cast<double>(num) / static_cast<double>(den);
}

// sklearn's F-score: 2 tp / (2 tp + fp + fn), 0 when nothing is there.
double F1(const Counts& c) { return Ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn); }

std::optional<double> ParseNumber(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

}  // namespace

std::optional<double> RocAuc(const std::vector<std::pair<double, bool>>& scored) {
  std::vector<std::pair<double, bool>> sorted = scored;
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  // Mann-Whitney U: the positives' rank sum, tied scores sharing their
  // average rank.
  double positive_ranks = 0;
  int64_t positives = 0;
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    while (j < sorted.size() && sorted[j].first == sorted[i].first) ++j;
    const double rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    for (size_t k = i; k < j; ++k) {
      if (sorted[k].second) {
        positive_ranks += rank;
        ++positives;
      }
    }
    i = j;
  }
  const int64_t negatives = static_cast<int64_t>(sorted.size()) - positives;
  if (positives == 0 || negatives == 0) return std::nullopt;
  const double p = static_cast<double>(positives);
  return (positive_ranks - p * (p + 1) / 2) / (p * static_cast<double>(negatives));
}

MetricValues ClassificationMetrics(const std::vector<LabeledPair>& pairs,
                                   std::string_view positive_class) {
  if (pairs.empty()) return {};
  std::set<std::string> labels;
  int64_t correct = 0;
  for (const LabeledPair& p : pairs) {
    labels.insert(p.predicted);
    labels.insert(p.truth);
    if (p.predicted == p.truth) ++correct;
  }
  MetricValues out;
  out.emplace_back("accuracy", Ratio(correct, static_cast<int64_t>(pairs.size())));
  const bool binary =
      labels.size() == 1 || (labels.size() == 2 && labels.count(std::string(positive_class)) == 1);
  std::map<std::string, Counts> per_label;
  for (const LabeledPair& p : pairs) {
    if (p.predicted == p.truth) {
      ++per_label[p.truth].tp;
    } else {
      ++per_label[p.predicted].fp;
      ++per_label[p.truth].fn;
    }
  }
  if (binary) {
    const Counts c = per_label[std::string(positive_class)];
    out.emplace_back("precision", Ratio(c.tp, c.tp + c.fp));
    out.emplace_back("recall", Ratio(c.tp, c.tp + c.fn));
    out.emplace_back("f1", F1(c));
    std::vector<std::pair<double, bool>> scored;
    for (const LabeledPair& p : pairs) {
      if (!p.score) return out;
      scored.emplace_back(*p.score, p.truth == positive_class);
    }
    if (auto auc = RocAuc(scored)) out.emplace_back("roc_auc", *auc);
    return out;
  }
  double precision = 0, recall = 0, f1 = 0;
  for (const std::string& label : labels) {
    const Counts& c = per_label[label];
    precision += Ratio(c.tp, c.tp + c.fp);
    recall += Ratio(c.tp, c.tp + c.fn);
    f1 += F1(c);
  }
  const double n = static_cast<double>(labels.size());
  out.emplace_back("precision", precision / n);
  out.emplace_back("recall", recall / n);
  out.emplace_back("f1", f1 / n);
  return out;
}

MetricValues RegressionMetrics(const std::vector<LabeledPair>& pairs) {
  double abs_sum = 0, square_sum = 0;
  int64_t n = 0;
  for (const LabeledPair& p : pairs) {
    const auto predicted = ParseNumber(p.predicted);
    const auto truth = ParseNumber(p.truth);
    if (!predicted || !truth) continue;
    const double error = *predicted - *truth;
    abs_sum += std::fabs(error);
    square_sum += error * error;
    ++n;
  }
  if (n == 0) return {};
  const double count = static_cast<double>(n);
  return {{"mae", abs_sum / count}, {"rmse", std::sqrt(square_sum / count)}};
}

bool HigherIsBetter(std::string_view metric) {
  return metric != "mae" && metric != "rmse" && metric != "log_loss" && metric != "mse";
}

double Drop(std::string_view metric, double registered, double live) {
  return HigherIsBetter(metric) ? registered - live : live - registered;
}

std::string NumberText(double v) {
  char text[40];
  if (v == 0) return "0";  // -0 too
  if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) {
    std::snprintf(text, sizeof(text), "%.0f", v);
    return text;
  }
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(text, sizeof(text), "%.*g", precision, v);
    if (std::strtod(text, nullptr) == v) break;
  }
  return text;
}

}  // namespace berth::feedback
