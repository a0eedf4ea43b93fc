#include "server/refusal_log.h"

namespace berth {

void LogRefusal(InferenceObserver* observer, const Refusal& refusal, const Status& status) {
  if (observer == nullptr) return;
  InferenceTimings timings;
  timings.protocol = refusal.protocol;
  timings.finished = std::chrono::steady_clock::now();
  timings.total = timings.finished - refusal.start;
  observer->OnRequestLogged({.model = {},
                             .requested = refusal.model,
                             .version = {},
                             .id = {},
                             .status = status,
                             .timings = timings,
                             .refused = true,
                             .http_status = refusal.http_status,
                             .client = refusal.client});
}

}  // namespace berth
