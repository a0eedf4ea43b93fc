#include "monitoring/drift/drift_stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace berth::drift {

std::vector<int64_t> BinCounts(std::span<const double> values, std::span<const double> edges) {
  const size_t k = edges.size() < 2 ? 1 : edges.size() - 1;
  std::vector<int64_t> counts(k, 0);
  // The interior edges decide: the outer bins reach to -inf and +inf, so a
  // live value outside the baseline's range still lands in a bin.
  const auto first = edges.size() < 2 ? edges.end() : edges.begin() + 1;
  const auto last = edges.size() < 2 ? edges.end() : edges.end() - 1;
  for (double v : values) {
    const size_t bin = static_cast<size_t>(std::upper_bound(first, last, v) - first);
    ++counts[std::min(bin, k - 1)];
  }
  return counts;
}

namespace {

std::vector<double> Proportions(std::span<const int64_t> counts) {
  double total = 0;
  for (int64_t c : counts) total += static_cast<double>(c);
  std::vector<double> p(counts.size(), 0);
  if (total <= 0) return p;
  for (size_t i = 0; i < counts.size(); ++i) {
    p[i] = std::max(static_cast<double>(counts[i]) / total, kPsiEpsilon);
  }
  return p;
}

}  // namespace

double Psi(std::span<const int64_t> window, std::span<const int64_t> baseline) {
  if (window.size() != baseline.size() || window.empty()) return 0;
  const std::vector<double> a = Proportions(window);
  const std::vector<double> e = Proportions(baseline);
  if (a[0] == 0 || e[0] == 0) return 0;  // an empty side: floors were not applied
  double psi = 0;
  for (size_t i = 0; i < a.size(); ++i) psi += (a[i] - e[i]) * std::log(a[i] / e[i]);
  return psi;
}

double QuantileCdf(std::span<const double> q, double x) {
  const size_t n = q.size();
  if (n < 2 || x < q.front()) return 0;
  if (x >= q.back()) return 1;
  // The last quantile <= x; x < q.back(), so i + 1 < n.
  const size_t i = static_cast<size_t>(std::upper_bound(q.begin(), q.end(), x) - q.begin()) - 1;
  const double step = 1.0 / static_cast<double>(n - 1);
  const double width = q[i + 1] - q[i];
  return (static_cast<double>(i) + (width > 0 ? (x - q[i]) / width : 0)) * step;
}

double QuantileCdfLeft(std::span<const double> q, double x) {
  const size_t n = q.size();
  if (n < 2 || x <= q.front()) return 0;
  if (x > q.back()) return 1;
  // The first quantile >= x; x > q.front(), so j >= 1. Between q[j-1] < x
  // and q[j] the function is linear, and continuous from the left at q[j].
  const size_t j = static_cast<size_t>(std::lower_bound(q.begin(), q.end(), x) - q.begin());
  const double step = 1.0 / static_cast<double>(n - 1);
  const double width = q[j] - q[j - 1];
  return (static_cast<double>(j - 1) + (width > 0 ? (x - q[j - 1]) / width : 1)) * step;
}

double KsStatistic(std::span<const double> sorted, std::span<const double> q) {
  // Between consecutive points of the window or the quantiles, F_window is
  // constant and F_baseline linear, so the supremum is reached at one of
  // those points, on the left or the right of its jumps.
  const double n = static_cast<double>(sorted.size());
  if (sorted.empty()) return 0;
  double d = 0;
  auto at = [&](double x) {
    const double below = static_cast<double>(std::lower_bound(sorted.begin(), sorted.end(), x) -
                                             sorted.begin());
    const double upto = static_cast<double>(std::upper_bound(sorted.begin(), sorted.end(), x) -
                                            sorted.begin());
    d = std::max(d, std::abs(upto / n - QuantileCdf(q, x)));
    d = std::max(d, std::abs(below / n - QuantileCdfLeft(q, x)));
  };
  for (double x : sorted) at(x);
  for (double x : q) at(x);
  return d;
}

double KsPValue(double d, int64_t n) {
  if (n <= 0 || d <= 0) return 1;
  const double sqrt_n = std::sqrt(static_cast<double>(n));
  // Stephens' correction makes the asymptotic series usable for small n.
  const double lambda = (sqrt_n + 0.12 + 0.11 / sqrt_n) * d;
  if (lambda < 0.2) return 1;
  double sum = 0;
  for (int k = 1; k <= 100; ++k) {
    const double term = std::exp(-2.0 * k * k * lambda * lambda);
    sum += (k % 2 == 1 ? term : -term);
    if (term < 1e-12) break;
  }
  return std::clamp(2 * sum, 0.0, 1.0);
}

double Wasserstein(std::span<const double> sorted, std::span<const double> q) {
  // Both quantile functions are piecewise: the window's steps at j/n, the
  // baseline's linear pieces at i/(m-1). Over each piece between
  // consecutive breakpoints, the window is a constant c and the baseline a
  // line, so the integral of |line - c| is exact (split where they cross).
  const size_t n = sorted.size();
  const size_t m = q.size();
  if (n == 0 || m < 2) return 0;
  std::vector<double> breaks;
  breaks.reserve(n + m);
  for (size_t j = 0; j <= n; ++j) breaks.push_back(static_cast<double>(j) / static_cast<double>(n));
  for (size_t i = 1; i + 1 < m; ++i) {
    breaks.push_back(static_cast<double>(i) / static_cast<double>(m - 1));
  }
  std::sort(breaks.begin(), breaks.end());
  const double step = 1.0 / static_cast<double>(m - 1);
  auto baseline = [&](double p) {
    const double pos = std::clamp(p / step, 0.0, static_cast<double>(m - 1));
    const size_t i = std::min(static_cast<size_t>(pos), m - 2);
    return q[i] + (q[i + 1] - q[i]) * (pos - static_cast<double>(i));
  };
  double total = 0;
  for (size_t b = 0; b + 1 < breaks.size(); ++b) {
    const double p0 = breaks[b];
    const double p1 = breaks[b + 1];
    if (p1 <= p0) continue;
    const double mid = (p0 + p1) / 2;
    const size_t j = std::min(static_cast<size_t>(mid * static_cast<double>(n)), n - 1);
    const double c = sorted[j];
    const double y0 = baseline(p0) - c;
    const double y1 = baseline(p1) - c;
    const double w = p1 - p0;
    if ((y0 >= 0) == (y1 >= 0)) {
      total += w * std::abs(y0 + y1) / 2;
    } else {
      // The line crosses c: two triangles.
      const double t = y0 / (y0 - y1);
      total += (t * w * std::abs(y0) + (1 - t) * w * std::abs(y1)) / 2;
    }
  }
  return total;
}

double JsDistance(std::span<const double> p, std::span<const double> q) {
  double sp = 0;
  double sq = 0;
  for (double v : p) sp += v;
  for (double v : q) sq += v;
  if (p.size() != q.size() || sp <= 0 || sq <= 0) return 0;
  double js = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double a = p[i] / sp;
    const double b = q[i] / sq;
    const double m = (a + b) / 2;
    if (a > 0) js += a * std::log(a / m) / 2;
    if (b > 0) js += b * std::log(b / m) / 2;
  }
  return std::sqrt(std::max(js, 0.0));
}

double GammaQ(double a, double x) {
  if (x <= 0 || a <= 0) return 1;
  const double log_prefix = -x + a * std::log(x) - std::lgamma(a);
  if (x < a + 1) {
    // The series for P(a, x).
    double sum = 1 / a;
    double term = sum;
    for (int n = 1; n < 1000; ++n) {
      term *= x / (a + n);
      sum += term;
      if (std::abs(term) < std::abs(sum) * 1e-15) break;
    }
    return std::clamp(1 - sum * std::exp(log_prefix), 0.0, 1.0);
  }
  // Lentz's continued fraction for Q(a, x).
  constexpr double kTiny = 1e-300;
  double b = x + 1 - a;
  double c = 1 / kTiny;
  double d = 1 / b;
  double h = d;
  for (int i = 1; i < 1000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::abs(d) < kTiny) d = kTiny;
    c = b + an / c;
    if (std::abs(c) < kTiny) c = kTiny;
    d = 1 / d;
    const double delta = d * c;
    h *= delta;
    if (std::abs(delta - 1) < 1e-15) break;
  }
  return std::clamp(std::exp(log_prefix) * h, 0.0, 1.0);
}

std::pair<double, double> ChiSquare(std::span<const double> observed,
                                    std::span<const double> baseline) {
  double n = 0;
  double total = 0;
  for (double o : observed) n += o;
  for (double b : baseline) total += b;
  if (observed.size() != baseline.size() || observed.size() < 2 || n <= 0 || total <= 0) {
    return {0, 1};
  }
  std::vector<double> e(baseline.size());
  double sum = 0;
  for (size_t i = 0; i < e.size(); ++i) {
    e[i] = std::max(baseline[i] / total, kPsiEpsilon);
    sum += e[i];
  }
  double chi2 = 0;
  for (size_t i = 0; i < e.size(); ++i) {
    const double expected = n * e[i] / sum;
    chi2 += (observed[i] - expected) * (observed[i] - expected) / expected;
  }
  const double dof = static_cast<double>(e.size() - 1);
  return {chi2, GammaQ(dof / 2, chi2 / 2)};
}

}  // namespace berth::drift
