// Fuzz target: a model's config.yaml / config.json (ParseModelConfig), and
// ResolveSignature on what it declares. Beyond not crashing (yaml-cpp throws;
// the parser must turn every throw into a Status), a config that parses must
// satisfy the schema's documented ranges.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "registry/config_parser.h"

namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "invariant broken: %s\n", what.c_str());
  std::abort();
}

void CheckSpecs(const std::vector<berth::TensorSpec>& specs, const char* what) {
  for (const auto& s : specs) {
    if (s.datatype == berth::DataType::kInvalid) Fail(std::string(what) + " with no datatype");
    for (int64_t d : s.shape) {
      if (d < -1) Fail(std::string(what) + " with a dimension below -1");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = berth::ParseModelConfig(text);
  if (!config.ok()) {
    if (config.status().code() != berth::Status::Code::kInvalidArgument) {
      Fail("a bad config must be INVALID_ARGUMENT: " + config.status().ToString());
    }
    return 0;
  }
  const berth::ModelConfig& c = *config;
  if (c.max_batch_size < 0) Fail("negative max_batch_size");
  if (c.onnxruntime.intra_op_threads < 0 || c.onnxruntime.inter_op_threads < 0) {
    Fail("negative thread count");
  }
  const auto& policy = c.version_policy;
  if (policy.kind == berth::VersionPolicy::Kind::kLatest && policy.latest < 1) {
    Fail("version_policy.latest below 1");
  }
  if (policy.kind == berth::VersionPolicy::Kind::kSpecific) {
    if (policy.specific.empty()) Fail("empty version_policy.specific");
    std::set<int64_t> seen;
    for (int64_t v : policy.specific) {
      if (v < 1 || !seen.insert(v).second) Fail("bad version in version_policy.specific");
    }
  }
  CheckSpecs(c.inputs, "input");
  CheckSpecs(c.outputs, "output");
  for (const berth::AlertRule& r : c.alerts) {
    const berth::AlertMetric* metric = berth::FindAlertMetric(r.metric);
    if (metric == nullptr) Fail("an alert rule with an unknown metric");
    if (metric->windowed ? r.window.count() <= 0 : r.window.count() != 0) {
      Fail("an alert rule's window does not fit its metric");
    }
    if (r.for_duration.count() < 0 || !std::isfinite(r.threshold) || r.name.empty()) {
      Fail("an alert rule with a negative for, a non-finite threshold or no name");
    }
  }

  // The config against a file that declares exactly what the config does, and
  // against one that declares nothing: either may be refused, never crash.
  berth::ModelSignature same{c.inputs, c.outputs};
  auto resolved = berth::ResolveSignature(c, same);
  if (resolved.ok() && resolved->inputs != c.inputs) Fail("resolved inputs differ from the file");
  (void)berth::ResolveSignature(c, berth::ModelSignature{});
  return 0;
}
