// A version's baseline profile: what its training data looked like, feature
// by feature and for its prediction, in the "berth-baseline/1" format the
// Python SDK writes at import (docs/monitoring.md). The drift monitor
// compares live windows against it. Parsed from untrusted bytes (a version's
// metadata, a file a user sends): every field is checked.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace berth::drift {

inline constexpr std::string_view kBaselineFormat = "berth-baseline/1";
// Bounds on what one profile may hold: features (each one a Prometheus
// series per statistic) and categories per feature.
inline constexpr size_t kMaxFeatures = 256;
inline constexpr size_t kMaxCategories = 1000;
inline constexpr size_t kQuantiles = 101;
inline constexpr size_t kMaxBins = 1000;
inline constexpr size_t kMaxNameBytes = 128;

enum class FeatureKind { kNumeric, kCategorical };

struct FeatureProfile {
  std::string name;
  // The model input (for the prediction: output) tensor, and the index in
  // its last dimension (0 for a [-1] or [-1, 1] tensor).
  std::string tensor;
  int64_t column = 0;
  FeatureKind kind = FeatureKind::kNumeric;
  int64_t count = 0;    // values seen, missing ones excluded
  int64_t missing = 0;
  // Numeric.
  double mean = 0;
  double std = 0;
  double min = 0;
  double max = 0;
  std::vector<double> quantiles;  // kQuantiles, 0% to 100%
  std::vector<double> bins;       // k+1 increasing edges
  std::vector<int64_t> counts;    // k
  // Categorical: value (as text) -> count.
  std::map<std::string, int64_t> frequencies;
};

struct BaselineProfile {
  int64_t rows = 0;
  std::vector<FeatureProfile> features;
  std::optional<FeatureProfile> prediction;
};

// Parses a "berth-baseline/1" object. InvalidArgument naming the field for
// anything malformed or out of bounds.
StatusOr<BaselineProfile> ParseBaseline(std::string_view json);
// The `baseline` field of a version's metadata (a JSON object); NotFound
// when there is none, InvalidArgument when it is malformed.
StatusOr<BaselineProfile> BaselineFromMetadata(std::string_view metadata_json);
// The profile in the same format.
std::string BaselineToJson(const BaselineProfile& profile);

// A numeric feature's profile from its values (NaN: missing): count,
// moments, the 101 quantiles (linear interpolation, numpy's default), and
// the deciles as bin edges, deduplicated. `values` is reordered.
void ProfileNumeric(std::vector<double>& values, FeatureProfile* out);
// A categorical feature's profile from its values.
void ProfileCategorical(std::span<const std::string> values, FeatureProfile* out);

}  // namespace berth::drift
