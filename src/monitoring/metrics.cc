#include "monitoring/metrics.h"

#include <mutex>
#include <set>

namespace berth {
namespace {

// Label values are escaped as the exposition format requires.
std::string Escape(const std::string& v) {
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

std::string Labels(const std::string& model, const std::string& version) {
  return "model=\"" + Escape(model) + "\",version=\"" + Escape(version) + "\"";
}

void Header(std::string* out, const char* name, const char* type, const char* help) {
  *out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
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

void Metrics::OnInferenceDone(const std::string& model, const std::string& version,
                              const Status& status, std::chrono::nanoseconds duration) {
  if (model.empty()) {
    unknown_model_failures_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  Record(series_, Key(model, version), [&](Series& s) {
    if (status.ok()) {
      s.success.fetch_add(1, std::memory_order_relaxed);
      const double seconds = std::chrono::duration<double>(duration).count();
      size_t b = 0;
      while (b < kLatencyBuckets.size() && seconds > kLatencyBuckets[b]) ++b;
      s.buckets[b].fetch_add(1, std::memory_order_relaxed);
      s.duration_ns.fetch_add(static_cast<uint64_t>(duration.count()), std::memory_order_relaxed);
    } else {
      s.failure_by_code[static_cast<size_t>(status.code())].fetch_add(1,
                                                                      std::memory_order_relaxed);
    }
  });
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

  Header(&out, "berth_inference_request_duration_seconds", "histogram",
         "Time from a decoded request to its response, for successful requests.");
  for (const auto& [key, s] : rendered) {
    const std::string labels = Labels(key->first, key->second);
    uint64_t cumulative = 0;
    for (size_t b = 0; b < kLatencyBuckets.size(); ++b) {
      cumulative += s->buckets[b].load();
      char le[32];
      std::snprintf(le, sizeof(le), "%g", kLatencyBuckets[b]);
      out += "berth_inference_request_duration_seconds_bucket{" + labels + ",le=\"" + le + "\"} " +
             std::to_string(cumulative) + "\n";
    }
    cumulative += s->buckets.back().load();
    out += "berth_inference_request_duration_seconds_bucket{" + labels + ",le=\"+Inf\"} " +
           std::to_string(cumulative) + "\n";
    char sum[32];
    std::snprintf(sum, sizeof(sum), "%.9f", static_cast<double>(s->duration_ns.load()) * 1e-9);
    out += "berth_inference_request_duration_seconds_sum{" + labels + "} " + sum + "\n";
    out += "berth_inference_request_duration_seconds_count{" + labels + "} " +
           std::to_string(cumulative) + "\n";
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
  return out;
}

}  // namespace berth
