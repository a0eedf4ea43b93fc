// Fuzz target: a feedback request's body (POST /v2/models/{m}/feedback,
// server/http/feedback_routes.h). A body that parses must keep the
// documented bounds (1 to 100000 items, ids of 1 to 256 bytes, rows from 0,
// truths of at most 256 bytes), and its truths must go through the metric
// computations (monitoring/feedback/feedback_stats.h) without crashing;
// anything else is INVALID_ARGUMENT.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "monitoring/feedback/feedback_stats.h"
#include "server/http/feedback_routes.h"

namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "invariant broken: %s\n", what.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto items = berth::http::ParseFeedbackRequest(body);
  if (!items.ok()) {
    if (items.status().code() != berth::Status::Code::kInvalidArgument) {
      Fail("a bad body must be INVALID_ARGUMENT: " + items.status().ToString());
    }
    return 0;
  }
  if (items->empty() || items->size() > 100000) Fail("item count out of bounds");
  std::vector<berth::feedback::LabeledPair> pairs;
  for (size_t i = 0; i < items->size(); ++i) {
    const berth::FeedbackItem& item = (*items)[i];
    if (item.id.empty() || item.id.size() > 256) Fail("id length out of bounds");
    if (item.row < 0) Fail("negative row");
    if (item.truth.size() > 256) Fail("truth over 256 bytes");
    // Each truth against the next one's, as if it had been predicted.
    const std::string& next = (*items)[(i + 1) % items->size()].truth;
    pairs.push_back({next, item.truth, static_cast<double>(i % 7) / 7});
  }
  for (const auto& [name, value] : berth::feedback::ClassificationMetrics(pairs, "1")) {
    if (!(value >= 0 && value <= 1)) Fail("classification metric " + name + " outside [0, 1]");
  }
  for (const auto& [name, value] : berth::feedback::RegressionMetrics(pairs)) {
    if (!(value >= 0)) Fail("regression metric " + name + " negative or NaN");
  }
  return 0;
}
