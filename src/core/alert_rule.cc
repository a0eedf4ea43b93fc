#include "core/alert_rule.h"

namespace berth {

std::string_view AlertComparisonName(AlertComparison op) {
  switch (op) {
    case AlertComparison::kGreater: return ">";
    case AlertComparison::kGreaterOrEqual: return ">=";
    case AlertComparison::kLess: return "<";
    case AlertComparison::kLessOrEqual: return "<=";
  }
  return "?";
}

const AlertMetric* FindAlertMetric(std::string_view name) {
  for (const AlertMetric& m : kAlertMetrics) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

}  // namespace berth
