// Fuzz target: a drift baseline profile ("berth-baseline/1", from a version's
// metadata or a user's file; monitoring/drift/baseline.h). A profile that
// parses must satisfy the documented bounds, write back to a profile that
// parses the same, and be comparable with a window without crashing,
// whatever its numbers (huge, equal, denormal).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "monitoring/drift/baseline.h"
#include "monitoring/drift/drift_window.h"

namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "invariant broken: %s\n", what.c_str());
  std::abort();
}

void Check(const berth::drift::FeatureProfile& f) {
  using berth::drift::FeatureKind;
  if (f.name.empty() || f.tensor.empty()) Fail("a feature without a name or tensor");
  if (f.count < 0 || f.missing < 0 || f.column < 0) Fail("a negative count or column");
  if (f.kind == FeatureKind::kNumeric) {
    if (f.quantiles.size() != berth::drift::kQuantiles) Fail("quantiles");
    for (size_t i = 1; i < f.quantiles.size(); ++i) {
      if (f.quantiles[i] < f.quantiles[i - 1]) Fail("decreasing quantiles");
    }
    if (f.bins.size() < 2 || f.counts.size() + 1 != f.bins.size()) Fail("bins and counts");
  } else if (f.frequencies.size() > berth::drift::kMaxCategories) {
    Fail("too many categories");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto profile = berth::drift::ParseBaseline(text);
  if (!profile.ok()) {
    if (profile.status().code() != berth::Status::Code::kInvalidArgument) {
      Fail("a bad profile must be INVALID_ARGUMENT: " + profile.status().ToString());
    }
    return 0;
  }
  if (profile->features.size() > berth::drift::kMaxFeatures) Fail("too many features");
  for (const auto& f : profile->features) Check(f);
  if (profile->prediction) Check(*profile->prediction);

  const std::string written = berth::drift::BaselineToJson(*profile);
  auto again = berth::drift::ParseBaseline(written);
  if (!again.ok()) Fail("a written profile does not parse: " + again.status().ToString());
  if (berth::drift::BaselineToJson(*again) != written) Fail("the profile does not round-trip");

  berth::MonitoringConfig config;
  config.min_window = 1;
  const std::vector<double> numbers = {-1e308, -1, 0, 0.5, 1, 1e308, std::nan("")};
  const std::vector<std::string> categories = {"0", "1", "", "x"};
  for (const auto& f : profile->features) {
    (void)berth::drift::CompareFeature(f, numbers, categories, config);
  }
  return 0;
}
