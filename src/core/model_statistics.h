// Triton's statistics extension: what GET /v2/models[/{m}[/versions/{v}]]/stats
// and gRPC ModelStatistics answer, assembled once for every front end (REST
// server/http/v2_json_codec, gRPC server/grpc/grpc_codec only serialise it).
// The counters are those the Prometheus metrics render (monitoring/metrics.h),
// fed by the timings of core/inference_timings.h.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/model_manager.h"
#include "core/status.h"

namespace berth {

// A count and the nanoseconds summed over it.
struct DurationStat {
  uint64_t count = 0;
  uint64_t ns = 0;
};

// The executions of one batch size.
struct BatchStatistics {
  uint64_t batch_size = 0;
  DurationStat compute_input;
  DurationStat compute_infer;
  DurationStat compute_output;
};

// One model version's statistics since it was loaded, in Triton's terms.
struct ModelStatistics {
  std::string name;
  std::string version;
  uint64_t last_inference_ms = 0;  // Unix time in ms of the last answer; 0: none yet
  uint64_t inference_count = 0;    // rows inferred: the executions' batch sizes summed
  uint64_t execution_count = 0;    // executions; a batch of N requests counts once
  DurationStat success;            // successful requests, resolve to answer
  DurationStat fail;               // failed requests, resolve to answer
  // Per successful request (count = success.count).
  DurationStat queue;
  DurationStat compute_input;
  DurationStat compute_infer;
  DurationStat compute_output;
  // Berth has no response cache: always zero, present for Triton's clients.
  DurationStat cache_hit;
  DurationStat cache_miss;
  std::vector<BatchStatistics> batch_stats;  // ascending batch_size
};

// Where the counters are kept (monitoring/metrics.h). Thread-safe.
class StatisticsSource {
 public:
  virtual ~StatisticsSource() = default;
  // The counters of one version (all zero when it has served nothing), with
  // `name` and `version` filled in.
  virtual ModelStatistics Statistics(const std::string& name,
                                     const std::string& version) const = 0;
};

// The statistics of the versions a request names, as Triton selects them:
// every READY version of every model when `name` is empty; every READY
// version of `name` when `selector` is empty; else the version `selector`
// names (a number, or an alias for its version). Ordered by name, then
// version. NotFound in Triton's words, with Berth's detail after them in
// parentheses: "requested model 'm' is not available (...)" for a model
// without a READY version, "requested model version is not available for
// model 'm' (...)" for a version that is not READY; InvalidArgument for a
// malformed name or version (ValidateModelName, ParseVersionNumber).
StatusOr<std::vector<ModelStatistics>> GetModelStatistics(const ModelManager& models,
                                                          const StatisticsSource& source,
                                                          std::string_view name,
                                                          std::string_view selector);

}  // namespace berth
