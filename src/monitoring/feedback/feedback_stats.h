// The rolling quality metrics of a version's joined predictions
// (docs/monitoring.md "Accuracy from ground truth"): pure functions over the
// window's pairs, computed as scikit-learn computes them, so that a test can
// check them against sklearn.metrics on the same pairs.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace berth::feedback {

// One prediction with its truth: class labels as text (classification), or
// numbers as NumberText writes them (regression).
struct LabeledPair {
  std::string predicted;
  std::string truth;
  std::optional<double> score;  // binary classification: P(positive class)
};

// Metric name and value, in a fixed order.
using MetricValues = std::vector<std::pair<std::string, double>>;

// accuracy, precision, recall, f1, and roc_auc when it is defined. With at
// most two labels among the truths and predictions, one of them
// `positive_class` (or only one label at all), the problem is binary and
// precision, recall and F1 are the positive class's (sklearn's
// average="binary", pos_label); roc_auc needs every pair's score and both
// classes among the truths. With more labels, precision, recall and F1 are
// the unweighted means over the labels seen (average="macro") and there is
// no roc_auc. A class never predicted (or never true) scores 0 where its
// ratio is 0/0, as sklearn's zero_division default does. Empty: nothing.
MetricValues ClassificationMetrics(const std::vector<LabeledPair>& pairs,
                                   std::string_view positive_class);

// mae and rmse over the pairs whose texts are both finite numbers.
MetricValues RegressionMetrics(const std::vector<LabeledPair>& pairs);

// The area under the ROC curve of scores against positive (true) and
// negative examples, ties counted half (sklearn's roc_auc_score); nullopt
// unless both kinds are present.
std::optional<double> RocAuc(const std::vector<std::pair<double, bool>>& scored);

// Whether a larger value of `metric` is better (accuracy, precision, recall,
// f1, roc_auc, r2); mae, rmse, log_loss are better smaller.
bool HigherIsBetter(std::string_view metric);

// How much worse `live` is than `registered` for `metric`: registered -
// live when higher is better, live - registered otherwise. Positive: worse.
double Drop(std::string_view metric, double registered, double live);

// A number as the feedback tables hold it: an integer (|v| < 2^53) in
// decimal without a point, anything else in the shortest text that reads
// back the same double; so 1 and 1.0 are one class, "1".
std::string NumberText(double v);

}  // namespace berth::feedback
