// The drift statistics: a window of live values against a baseline profile
// (monitoring/drift/baseline.h). Pure functions, no allocation beyond their
// results; the definitions are docs/monitoring.md's, and drift_stats_test.cc
// checks them against hand-computed values.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace berth::drift {

// Proportions of zero are replaced by this before a logarithm (PSI, JS's
// terms are 0 log 0 = 0 and need none), as most PSI implementations do.
inline constexpr double kPsiEpsilon = 1e-4;

// Counts of `values` in the bins `edges` (k+1 increasing edges, k >= 1).
// The outer bins are open: below edges[1] is bin 0, at or above
// edges[k-1] bin k-1; otherwise bin i holds [edges[i], edges[i+1]).
std::vector<int64_t> BinCounts(std::span<const double> values, std::span<const double> edges);

// Population stability index: sum over bins of (a - e) * ln(a / e), with
// a and e the window's and the baseline's proportions, each floored at
// kPsiEpsilon. Both count vectors have the same size; 0 if either is empty.
double Psi(std::span<const int64_t> window, std::span<const int64_t> baseline);

// The baseline's distribution as its quantile function: linear between the
// quantiles q[0..n-1] at probabilities i/(n-1). `quantiles` is
// non-decreasing with at least two entries.
//
// Its cumulative distribution function at x: the largest probability p with
// Q(p) <= x (right-continuous), and its left limit.
double QuantileCdf(std::span<const double> quantiles, double x);
double QuantileCdfLeft(std::span<const double> quantiles, double x);

// Kolmogorov-Smirnov statistic sup |F_window - F_baseline|, F_baseline from
// the quantiles as above. `sorted` is the window, ascending, not empty.
double KsStatistic(std::span<const double> sorted, std::span<const double> quantiles);
// Asymptotic p-value of KS statistic `d` on `n` values (Kolmogorov's
// distribution): reported, never used to decide.
double KsPValue(double d, int64_t n);

// First Wasserstein distance between the window (its empirical quantile
// function) and the baseline's quantile function: the integral over
// p in [0, 1] of |Q_window(p) - Q_baseline(p)|. `sorted` ascending, not
// empty. Not normalised.
double Wasserstein(std::span<const double> sorted, std::span<const double> quantiles);

// Jensen-Shannon distance (natural logarithm: scipy's jensenshannon
// default, in [0, sqrt(ln 2)]) between two count vectors over the same
// categories, each normalised to sum 1. 0 if either sums to 0.
double JsDistance(std::span<const double> p, std::span<const double> q);

// Pearson's chi-square of `observed` counts against the expected
// proportions `baseline` (counts, normalised, floored at kPsiEpsilon and
// renormalised), and its p-value with (categories - 1) degrees of freedom.
std::pair<double, double> ChiSquare(std::span<const double> observed,
                                    std::span<const double> baseline);

// Upper regularised incomplete gamma Q(a, x), for the chi-square p-value.
double GammaQ(double a, double x);

}  // namespace berth::drift
