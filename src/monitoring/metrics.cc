#include "monitoring/metrics.h"

#include <chrono>
#include <cstdio>
#include <mutex>
#include <set>

namespace berth {

std::string PrometheusLabelValue(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

namespace {

std::string Escape(const std::string& v) { return PrometheusLabelValue(v); }

std::string Labels(const std::string& model, const std::string& version) {
  return "model=\"" + Escape(model) + "\",version=\"" + Escape(version) + "\"";
}

void Header(std::string* out, const char* name, const char* type, const char* help) {
  *out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

// kLatencyBuckets in nanoseconds, so that recording compares integers.
constexpr std::array<int64_t, Metrics::kLatencyBuckets.size()> kLatencyBucketsNs = {
    100'000,     250'000,     500'000,       1'000'000,    2'500'000,
    5'000'000,   10'000'000,  25'000'000,    50'000'000,   100'000'000,
    250'000'000, 500'000'000, 1'000'000'000, 5'000'000'000};

uint64_t Nanos(std::chrono::nanoseconds d) {
  return d.count() > 0 ? static_cast<uint64_t>(d.count()) : 0;
}

std::string Seconds(uint64_t ns) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.9f", static_cast<double>(ns) * 1e-9);
  return text;
}

DurationStat Duration(uint64_t count, const std::atomic<uint64_t>& ns) {
  return {count, ns.load(std::memory_order_relaxed)};
}

}  // namespace

void Metrics::LatencyHistogram::Observe(std::chrono::nanoseconds duration) {
  size_t b = 0;
  while (b < kLatencyBucketsNs.size() && duration.count() > kLatencyBucketsNs[b]) ++b;
  buckets[b].fetch_add(1, std::memory_order_relaxed);
  sum_ns.fetch_add(Nanos(duration), std::memory_order_relaxed);
}

uint64_t Metrics::LatencyHistogram::Count() const {
  uint64_t n = 0;
  for (const auto& b : buckets) n += b.load(std::memory_order_relaxed);
  return n;
}

namespace {

// One histogram's _bucket, _sum and _count lines; `labels` is not empty.
void RenderHistogram(std::string* out, const char* name, const std::string& labels,
                     const std::array<std::atomic<uint64_t>, Metrics::kLatencyBuckets.size() + 1>&
                         buckets,
                     uint64_t sum_ns) {
  uint64_t cumulative = 0;
  for (size_t b = 0; b < Metrics::kLatencyBuckets.size(); ++b) {
    cumulative += buckets[b].load();
    char le[32];
    std::snprintf(le, sizeof(le), "%g", Metrics::kLatencyBuckets[b]);
    *out += std::string(name) + "_bucket{" + labels + ",le=\"" + le + "\"} " +
            std::to_string(cumulative) + "\n";
  }
  cumulative += buckets.back().load();
  *out += std::string(name) + "_bucket{" + labels + ",le=\"+Inf\"} " +
          std::to_string(cumulative) + "\n";
  *out += std::string(name) + "_sum{" + labels + "} " + Seconds(sum_ns) + "\n";
  *out += std::string(name) + "_count{" + labels + "} " + std::to_string(cumulative) + "\n";
}

}  // namespace

template <typename S, typename F>
void Metrics::Record(std::map<Key, std::unique_ptr<S>>& map, const Key& key, F record) {
  {
    std::shared_lock lock(mu_);
    auto it = map.find(key);
    if (it != map.end()) return record(*it->second);
  }
  std::unique_lock lock(mu_);
  auto& slot = map[key];
  if (!slot) slot = std::make_unique<S>();
  record(*slot);
}

void Metrics::Observe(Series& s, BatchSeries* batch, const Status& status,
                      const InferenceTimings& timings) {
  s.last_inference_ns.store(timings.finished.time_since_epoch().count(),
                            std::memory_order_relaxed);
  const size_t protocol = static_cast<size_t>(timings.protocol) % kProtocolCount;
  (status.ok() ? s.success_by_protocol : s.failure_by_protocol)[protocol].fetch_add(
      1, std::memory_order_relaxed);
  if (!status.ok()) {
    s.failure_by_code[static_cast<size_t>(status.code())].fetch_add(1, std::memory_order_relaxed);
    s.failure_ns.fetch_add(Nanos(timings.total), std::memory_order_relaxed);
    return;
  }
  s.success.fetch_add(1, std::memory_order_relaxed);
  s.latency.Observe(timings.total);
  s.queue.Observe(timings.queue);
  const std::array<std::chrono::nanoseconds, kPhases.size()> phases = {
      timings.compute_input, timings.compute_infer, timings.compute_output};
  for (size_t p = 0; p < phases.size(); ++p) s.compute[p].Observe(phases[p]);
  if (batch == nullptr) return;
  const uint64_t rows = timings.batch_size > 0 ? static_cast<uint64_t>(timings.batch_size) : 0;
  s.rows.fetch_add(rows, std::memory_order_relaxed);
  s.executions.fetch_add(1, std::memory_order_relaxed);
  size_t b = 0;
  while (b < kBatchSizeBuckets.size() && timings.batch_size > kBatchSizeBuckets[b]) ++b;
  s.batch_size_buckets[b].fetch_add(1, std::memory_order_relaxed);
  batch->executions.fetch_add(1, std::memory_order_relaxed);
  for (size_t p = 0; p < phases.size(); ++p) {
    batch->compute_ns[p].fetch_add(Nanos(phases[p]), std::memory_order_relaxed);
  }
}

void Metrics::OnInferenceDone(const std::string& model, const std::string& version,
                              const Status& status, const InferenceTimings& timings) {
  if (model.empty()) {
    unknown_model_failures_.fetch_add(1, std::memory_order_relaxed);
    unknown_model_by_protocol_[static_cast<size_t>(timings.protocol) % kProtocolCount].fetch_add(
        1, std::memory_order_relaxed);
    return;
  }
  // Only a successful request that counts its execution needs the counters
  // of its batch size; the first of a size inserts them under the exclusive
  // lock, as the first request of a version creates its series.
  const bool needs_batch = status.ok() && timings.counts_execution;
  const Key key(model, version);
  {
    std::shared_lock lock(mu_);
    auto it = series_.find(key);
    if (it != series_.end()) {
      Series& s = *it->second;
      if (!needs_batch) return Observe(s, nullptr, status, timings);
      auto batch = s.batches.find(timings.batch_size);
      if (batch != s.batches.end()) return Observe(s, &batch->second, status, timings);
    }
  }
  std::unique_lock lock(mu_);
  auto& slot = series_[key];
  if (!slot) slot = std::make_unique<Series>();
  BatchSeries* batch = needs_batch ? &slot->batches.try_emplace(timings.batch_size).first->second
                                   : nullptr;
  Observe(*slot, batch, status, timings);
}

void Metrics::OnShadowDone(const std::string& model, const std::string& shadow_version,
                           const Status& status, const ShadowComparison* comparison,
                           std::chrono::nanoseconds duration) {
  Record(shadow_series_, Key(model, shadow_version), [&](ShadowSeries& s) {
    s.duration_ns.fetch_add(static_cast<uint64_t>(duration.count()), std::memory_order_relaxed);
    if (!status.ok() || comparison == nullptr) {
      s.failed.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    (comparison->agree ? s.agree : s.differ).fetch_add(1, std::memory_order_relaxed);
    s.abs_difference_sum.fetch_add(comparison->abs_difference_sum, std::memory_order_relaxed);
    s.float_elements.fetch_add(comparison->float_elements, std::memory_order_relaxed);
  });
}

void Metrics::OnModelChanged(const std::string& name, const ModelEntry* entry) {
  std::unique_lock lock(mu_);
  for (auto it = series_.lower_bound(Key(name, "")); it != series_.end() && it->first.first == name;) {
    // The model-level series (version "") lives as long as the model does.
    bool present = entry != nullptr && it->first.second.empty();
    if (entry != nullptr) {
      for (const VersionEntry& v : entry->versions) {
        present = present || it->first.second == std::to_string(v.version);
      }
    }
    it = present ? std::next(it) : series_.erase(it);
  }
  for (auto it = shadow_series_.lower_bound(Key(name, ""));
       it != shadow_series_.end() && it->first.first == name;) {
    const bool present = entry != nullptr && entry->shadow &&
                         std::to_string(entry->shadow->version) == it->first.second;
    it = present ? std::next(it) : shadow_series_.erase(it);
  }
}

std::string Metrics::RenderPrometheus(const ModelManager& models) const {
  std::string out;
  const std::vector<ModelEntry> table = models.List();
  std::set<Key> live;
  for (const ModelEntry& m : table) {
    live.emplace(m.name, "");
    for (const VersionEntry& v : m.versions) live.emplace(m.name, std::to_string(v.version));
  }
  std::shared_lock lock(mu_);
  std::vector<std::pair<const Key*, const Series*>> rendered;
  for (const auto& [key, s] : series_) {
    if (live.count(key) != 0) rendered.emplace_back(&key, s.get());
  }

  Header(&out, "berth_inference_requests_success_total", "counter",
         "Inference requests that succeeded.");
  for (const auto& [key, s] : rendered) {
    out += "berth_inference_requests_success_total{" + Labels(key->first, key->second) + "} " +
           std::to_string(s->success.load()) + "\n";
  }

  Header(&out, "berth_inference_requests_failure_total", "counter",
         "Inference requests that failed, by reason.");
  for (const auto& [key, s] : rendered) {
    for (size_t c = 1; c < s->failure_by_code.size(); ++c) {
      const uint64_t n = s->failure_by_code[c].load();
      if (n == 0) continue;
      out += "berth_inference_requests_failure_total{" + Labels(key->first, key->second) +
             ",reason=\"" + StatusCodeName(static_cast<Status::Code>(c)) + "\"} " +
             std::to_string(n) + "\n";
    }
  }
  out += "berth_inference_requests_failure_total{model=\"\",version=\"\",reason=\"NOT_FOUND\"} " +
         std::to_string(unknown_model_failures_.load()) + "\n";

  Header(&out, "berth_inference_requests_total", "counter",
         "Inference requests by the door they came in by (protocol: rest, grpc, tfserving, rows, "
         "sagemaker, vertex, azure) and outcome (success, failure).");
  auto by_protocol = [&out](const std::string& labels, const char* outcome,
                            const std::array<std::atomic<uint64_t>, kProtocolCount>& counts) {
    for (size_t p = 0; p < kProtocolCount; ++p) {
      const uint64_t n = counts[p].load();
      if (n == 0) continue;
      out += "berth_inference_requests_total{" + labels + ",protocol=\"" +
             ProtocolName(static_cast<Protocol>(p)) + "\",outcome=\"" + outcome + "\"} " +
             std::to_string(n) + "\n";
    }
  };
  for (const auto& [key, s] : rendered) {
    by_protocol(Labels(key->first, key->second), "success", s->success_by_protocol);
    by_protocol(Labels(key->first, key->second), "failure", s->failure_by_protocol);
  }
  by_protocol(Labels("", ""), "failure", unknown_model_by_protocol_);

  Header(&out, "berth_inference_request_duration_seconds", "histogram",
         "Time from a decoded request to its response, for successful requests.");
  for (const auto& [key, s] : rendered) {
    RenderHistogram(&out, "berth_inference_request_duration_seconds",
                    Labels(key->first, key->second), s->latency.buckets, s->latency.sum_ns.load());
  }

  Header(&out, "berth_inference_queue_duration_seconds", "histogram",
         "Time a successful request waited for its execution to start (the dynamic batcher's "
         "queue; 0 without dynamic batching).");
  for (const auto& [key, s] : rendered) {
    RenderHistogram(&out, "berth_inference_queue_duration_seconds",
                    Labels(key->first, key->second), s->queue.buckets, s->queue.sum_ns.load());
  }

  Header(&out, "berth_inference_compute_duration_seconds", "histogram",
         "Time the execution a successful request ran in spent in each phase: input (assembling "
         "the engine's inputs), infer (the engine run), output (building the responses). Each "
         "request of a batch observes its batch's times.");
  for (const auto& [key, s] : rendered) {
    for (size_t p = 0; p < kPhases.size(); ++p) {
      RenderHistogram(&out, "berth_inference_compute_duration_seconds",
                      Labels(key->first, key->second) + ",phase=\"" + kPhases[p] + "\"",
                      s->compute[p].buckets, s->compute[p].sum_ns.load());
    }
  }

  Header(&out, "berth_batch_size", "histogram",
         "Rows per execution (a batch of requests counts once): _count is executions, _sum rows "
         "inferred.");
  for (const auto& [key, s] : rendered) {
    const std::string labels = Labels(key->first, key->second);
    uint64_t cumulative = 0;
    for (size_t b = 0; b < kBatchSizeBuckets.size(); ++b) {
      cumulative += s->batch_size_buckets[b].load();
      out += "berth_batch_size_bucket{" + labels + ",le=\"" +
             std::to_string(kBatchSizeBuckets[b]) + "\"} " + std::to_string(cumulative) + "\n";
    }
    cumulative += s->batch_size_buckets.back().load();
    out += "berth_batch_size_bucket{" + labels + ",le=\"+Inf\"} " + std::to_string(cumulative) +
           "\n";
    out += "berth_batch_size_sum{" + labels + "} " + std::to_string(s->rows.load()) + "\n";
    out += "berth_batch_size_count{" + labels + "} " + std::to_string(cumulative) + "\n";
  }

  Header(&out, "berth_shadow_requests_total", "counter",
         "Shadow requests, by outcome: agree or differ with the live answer, or failed.");
  for (const auto& [key, s] : shadow_series_) {
    if (live.count(key) == 0) continue;
    const std::string labels = Labels(key.first, key.second);
    out += "berth_shadow_requests_total{" + labels + ",outcome=\"agree\"} " +
           std::to_string(s->agree.load()) + "\n";
    out += "berth_shadow_requests_total{" + labels + ",outcome=\"differ\"} " +
           std::to_string(s->differ.load()) + "\n";
    out += "berth_shadow_requests_total{" + labels + ",outcome=\"failed\"} " +
           std::to_string(s->failed.load()) + "\n";
  }
  Header(&out, "berth_shadow_abs_difference_sum", "counter",
         "Sum of |live - shadow| over the floating-point output elements compared.");
  for (const auto& [key, s] : shadow_series_) {
    if (live.count(key) == 0) continue;
    char sum[32];
    std::snprintf(sum, sizeof(sum), "%.9g", s->abs_difference_sum.load());
    out += "berth_shadow_abs_difference_sum{" + Labels(key.first, key.second) + "} " + sum + "\n";
  }
  Header(&out, "berth_shadow_compared_elements_total", "counter",
         "Floating-point output elements compared (divide the sum above by this).");
  for (const auto& [key, s] : shadow_series_) {
    if (live.count(key) == 0) continue;
    out += "berth_shadow_compared_elements_total{" + Labels(key.first, key.second) + "} " +
           std::to_string(s->float_elements.load()) + "\n";
  }
  Header(&out, "berth_shadow_duration_seconds_sum", "counter",
         "Time the shadow version took, summed over shadow requests.");
  for (const auto& [key, s] : shadow_series_) {
    if (live.count(key) == 0) continue;
    char sum[32];
    std::snprintf(sum, sizeof(sum), "%.9f", static_cast<double>(s->duration_ns.load()) * 1e-9);
    out += "berth_shadow_duration_seconds_sum{" + Labels(key.first, key.second) + "} " + sum + "\n";
  }
  lock.unlock();

  Header(&out, "berth_inference_requests_in_flight", "gauge",
         "Requests resolved to the model version and not yet answered.");
  for (const ModelEntry& m : table) {
    for (const VersionEntry& v : m.versions) {
      if (v.model == nullptr) continue;
      out += "berth_inference_requests_in_flight{" + Labels(m.name, std::to_string(v.version)) +
             "} " + std::to_string(v.model->in_flight.load(std::memory_order_relaxed)) + "\n";
    }
  }

  Header(&out, "berth_inference_queue_full_total", "counter",
         "Requests refused because the model version's dynamic batching queue was full "
         "(max_queue_size); also counted as UNAVAILABLE failures.");
  for (const ModelEntry& m : table) {
    for (const VersionEntry& v : m.versions) {
      if (v.model == nullptr || !v.model->config.dynamic_batching) continue;
      out += "berth_inference_queue_full_total{" + Labels(m.name, std::to_string(v.version)) +
             "} " + std::to_string(v.model->queue_full.load(std::memory_order_relaxed)) + "\n";
    }
  }

  Header(&out, "berth_model_ready", "gauge", "1 if the model version is READY, else 0.");
  for (const ModelEntry& m : table) {
    for (const VersionEntry& v : m.versions) {
      out += "berth_model_ready{" + Labels(m.name, std::to_string(v.version)) + "} " +
             (v.state == ModelState::kReady ? "1" : "0") + "\n";
    }
  }
  Header(&out, "berth_model_memory_bytes", "gauge",
         "Memory the model version holds against --memory-budget (measured when it loaded).");
  for (const ModelEntry& m : table) {
    for (const VersionEntry& v : m.versions) {
      if (v.state != ModelState::kReady || v.model == nullptr || v.model->memory == nullptr) {
        continue;
      }
      out += "berth_model_memory_bytes{" + Labels(m.name, std::to_string(v.version)) + "} " +
             std::to_string(v.model->memory->bytes()) + "\n";
    }
  }
  Header(&out, "berth_model_load_duration_seconds", "gauge",
         "How long the model version took to load: reading and compiling the artifact, then its "
         "warm-up.");
  for (const ModelEntry& m : table) {
    for (const VersionEntry& v : m.versions) {
      if (v.state != ModelState::kReady || v.model == nullptr) continue;
      out += "berth_model_load_duration_seconds{" + Labels(m.name, std::to_string(v.version)) +
             "} " + Seconds(Nanos(v.model->load_duration)) + "\n";
    }
  }
  return out;
}

Metrics::ShadowCounters Metrics::ShadowCountersOf(const std::string& model,
                                                   const std::string& version) const {
  ShadowCounters out;
  std::shared_lock lock(mu_);
  auto it = shadow_series_.find(Key(model, version));
  if (it == shadow_series_.end()) return out;
  const ShadowSeries& s = *it->second;
  out.agree = s.agree.load(std::memory_order_relaxed);
  out.differ = s.differ.load(std::memory_order_relaxed);
  out.failed = s.failed.load(std::memory_order_relaxed);
  out.abs_difference_sum = s.abs_difference_sum.load(std::memory_order_relaxed);
  out.float_elements = s.float_elements.load(std::memory_order_relaxed);
  out.duration_ns = s.duration_ns.load(std::memory_order_relaxed);
  return out;
}

Metrics::Counters Metrics::CountersOf(const std::string& model, const std::string& version) const {
  Counters out;
  std::shared_lock lock(mu_);
  auto it = series_.find(Key(model, version));
  if (it == series_.end()) return out;
  const Series& s = *it->second;
  out.success = s.success.load(std::memory_order_relaxed);
  for (const auto& f : s.failure_by_code) out.failure += f.load(std::memory_order_relaxed);
  for (size_t b = 0; b < out.latency.size(); ++b) {
    out.latency[b] = s.latency.buckets[b].load(std::memory_order_relaxed);
  }
  return out;
}

ModelStatistics Metrics::Statistics(const std::string& name, const std::string& version) const {
  ModelStatistics out;
  out.name = name;
  out.version = version;
  std::shared_lock lock(mu_);
  auto it = series_.find(Key(name, version));
  if (it == series_.end()) return out;
  const Series& s = *it->second;
  const int64_t last = s.last_inference_ns.load(std::memory_order_relaxed);
  if (last != 0) {
    // The steady clock's reading, carried over to the wall clock now.
    const auto ago = std::chrono::steady_clock::now().time_since_epoch() -
                     std::chrono::nanoseconds(last);
    const auto at = std::chrono::system_clock::now().time_since_epoch() - ago;
    out.last_inference_ms =
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(at).count());
  }
  out.inference_count = s.rows.load(std::memory_order_relaxed);
  out.execution_count = s.executions.load(std::memory_order_relaxed);
  const uint64_t success = s.success.load(std::memory_order_relaxed);
  uint64_t failures = 0;
  for (const auto& f : s.failure_by_code) failures += f.load(std::memory_order_relaxed);
  out.success = Duration(success, s.latency.sum_ns);
  out.fail = Duration(failures, s.failure_ns);
  out.queue = Duration(success, s.queue.sum_ns);
  out.compute_input = Duration(success, s.compute[0].sum_ns);
  out.compute_infer = Duration(success, s.compute[1].sum_ns);
  out.compute_output = Duration(success, s.compute[2].sum_ns);
  for (const auto& [size, b] : s.batches) {
    const uint64_t n = b.executions.load(std::memory_order_relaxed);
    out.batch_stats.push_back({static_cast<uint64_t>(size), Duration(n, b.compute_ns[0]),
                               Duration(n, b.compute_ns[1]), Duration(n, b.compute_ns[2])});
  }
  return out;
}

}  // namespace berth
