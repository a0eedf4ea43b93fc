#include "monitoring/drift/drift_monitor.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <set>

#include "core/float16.h"
#include "core/logging.h"
#include "core/model.h"
#include "monitoring/metrics.h"
#include "monitoring/tensor_values.h"

namespace berth::drift {
namespace {

// Input columns the monitor follows for a version without a baseline (for
// `berth models baseline --from-window`): at most this many per input.
constexpr int64_t kMaxDefaultColumns = 64;

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A number as Python's str() spells it, so that categories a profile
// written by the Python SDK names ("3", "1.5", "True") match live values.
std::string CategoryText(const Tensor& t, int64_t i) {
  if (t.datatype() == DataType::kBytes) return t.strings()[static_cast<size_t>(i)];
  const double v = ElementAsDouble(t, i);
  if (t.datatype() == DataType::kBool) return v != 0 ? "True" : "False";
  char text[40];
  if (IsIntegerType(t.datatype())) {
    std::snprintf(text, sizeof(text), "%.0f", v);
    return text;
  }
  if (!std::isfinite(v)) return "";
  if (v == std::floor(v) && std::fabs(v) < 1e16) {
    std::snprintf(text, sizeof(text), "%.1f", v);
    return text;
  }
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(text, sizeof(text), "%.*g", precision, v);
    if (std::strtod(text, nullptr) == v) break;
  }
  return text;
}

// Reads column `column` of `t` (rows: its elements over its last
// dimension's size; a rank-0 or rank-1 tensor has one column) into `out`;
// returns the rows, 0 when the column does not exist.
int64_t ReadColumn(const Tensor& t, int64_t column, FeatureKind kind, FeatureValues* out) {
  const int64_t elements = t.element_count();
  if (elements <= 0) return 0;
  const int64_t width = t.shape().size() >= 2 ? t.shape().back() : 1;
  if (width <= 0 || column >= width) return 0;
  const int64_t rows = elements / width;
  if (t.datatype() == DataType::kBytes) {
    if (static_cast<int64_t>(t.strings().size()) < elements) return 0;
  } else if (static_cast<int64_t>(t.bytes().size()) <
             elements * static_cast<int64_t>(DataTypeByteSize(t.datatype()))) {
    return 0;
  }
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = r * width + column;
    if (kind == FeatureKind::kCategorical) {
      out->categories.push_back(CategoryText(t, i));
    } else {
      out->numbers.push_back(t.datatype() == DataType::kBytes ? std::nan("")
                                                               : ElementAsDouble(t, i));
    }
  }
  return rows;
}

const Tensor* FindTensor(const std::vector<Tensor>& tensors, const std::string& name) {
  for (const Tensor& t : tensors) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

size_t ThreadShard(size_t shards) {
  thread_local const size_t shard = std::hash<std::thread::id>()(std::this_thread::get_id());
  return shard % shards;
}

}  // namespace

struct DriftMonitor::Sample final : InferenceSample {
  Key key;
  std::shared_ptr<const Plan> plan;
  SampledRows rows;
};

DriftMonitor::DriftMonitor(BaselineLookup lookup) : lookup_(std::move(lookup)) {}

DriftMonitor::~DriftMonitor() { Stop(); }

void DriftMonitor::Start() {
  std::lock_guard lock(thread_mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void DriftMonitor::Stop() {
  {
    std::lock_guard lock(thread_mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DriftMonitor::Loop() {
  std::unique_lock lock(thread_mu_);
  while (!cv_.wait_for(lock, std::chrono::milliseconds(200), [this] { return stop_; })) {
    lock.unlock();
    Flush();
    lock.lock();
  }
}

std::shared_ptr<const DriftMonitor::Plan> DriftMonitor::BuildPlan(
    const Model& model, std::optional<SourcedBaseline> baseline) {
  auto plan = std::make_shared<Plan>();
  plan->config = model.config.monitoring;
  if (baseline) {
    for (const FeatureProfile& f : baseline->profile.features) {
      plan->columns.push_back({f.name, f.tensor, f.column, f.kind});
    }
    if (const auto& p = baseline->profile.prediction) {
      plan->columns.push_back({p->name, p->tensor, p->column, p->kind});
      plan->has_prediction = true;
    }
    plan->baseline = std::move(baseline);
    return plan;
  }
  for (const TensorSpec& in : model.signature.inputs) {
    const int64_t width = in.shape.size() >= 2 ? in.shape.back() : 1;
    if (width < 1 || width > kMaxDefaultColumns) continue;
    const FeatureKind kind =
        in.datatype == DataType::kBytes ? FeatureKind::kCategorical : FeatureKind::kNumeric;
    for (int64_t c = 0; c < width && plan->columns.size() < kMaxFeatures; ++c) {
      plan->columns.push_back(
          {width == 1 ? in.name : in.name + "[" + std::to_string(c) + "]", in.name, c, kind});
    }
  }
  // The prediction: the first output with one value per row.
  for (const TensorSpec& out : model.signature.outputs) {
    const int64_t width = out.shape.size() >= 2 ? out.shape.back() : 1;
    if (width != 1) continue;
    const FeatureKind kind =
        IsIntegerType(out.datatype) ? FeatureKind::kCategorical : FeatureKind::kNumeric;
    plan->columns.push_back({out.name, out.name, 0, kind});
    plan->has_prediction = true;
    break;
  }
  return plan;
}

std::shared_ptr<const DriftMonitor::Plan> DriftMonitor::PlanFor(const Model& model) {
  const Key key(model.name, model.version);
  {
    std::shared_lock lock(plans_mu_);
    auto it = plans_.find(key);
    if (it != plans_.end()) return it->second;
  }
  std::lock_guard build(build_mu_);
  {
    std::shared_lock lock(plans_mu_);
    auto it = plans_.find(key);
    if (it != plans_.end()) return it->second;
  }
  std::optional<SourcedBaseline> baseline;
  auto found = lookup_(model.name, model.version);
  if (found.ok()) {
    baseline = std::move(found).value();
  } else {
    // A malformed baseline leaves the version without one; said once.
    const std::string version = std::to_string(model.version);
    LOG_WARN("drift: the version's baseline is ignored",
             {{"model", model.name}, {"version", version}, {"error", found.status().message()}});
  }
  auto plan = BuildPlan(model, std::move(baseline));
  std::unique_lock lock(plans_mu_);
  plans_[key] = plan;
  return plan;
}

std::shared_ptr<InferenceSample> DriftMonitor::OnSampledRequest(const Model& model,
                                                                const InferenceRequest& request) {
  std::shared_ptr<const Plan> plan = PlanFor(model);
  if (plan->columns.empty()) return nullptr;
  auto sample = std::make_shared<Sample>();
  sample->key = Key(model.name, model.version);
  sample->rows.features.resize(plan->columns.size());
  const size_t inputs = plan->columns.size() - (plan->has_prediction ? 1 : 0);
  for (size_t c = 0; c < inputs; ++c) {
    const FeatureSource& f = plan->columns[c];
    const Tensor* t = FindTensor(request.inputs, f.tensor);
    if (t == nullptr) continue;
    sample->rows.rows =
        std::max(sample->rows.rows, ReadColumn(*t, f.column, f.kind, &sample->rows.features[c]));
  }
  sample->plan = std::move(plan);
  return sample;
}

void DriftMonitor::OnSampledResponse(const Model& model, std::shared_ptr<InferenceSample> s,
                                     const InferenceResponse& response) {
  auto* sample = static_cast<Sample*>(s.get());
  const Plan& plan = *sample->plan;
  if (plan.has_prediction) {
    const FeatureSource& f = plan.columns.back();
    if (const Tensor* t = FindTensor(response.outputs, f.tensor)) {
      sample->rows.rows = std::max(sample->rows.rows,
                                   ReadColumn(*t, f.column, f.kind, &sample->rows.features.back()));
    }
  }
  sample->rows.unix_ms = NowUnixMs();
  Shard& shard = shards_[ThreadShard(kShards)];
  std::lock_guard lock(shard.mu);
  shard.pending.push_back({std::move(sample->key), std::move(sample->plan), std::move(sample->rows)});
}

void DriftMonitor::Flush() {
  std::lock_guard flush(flush_mu_);
  std::vector<Pending> all;
  for (Shard& shard : shards_) {
    std::vector<Pending> taken;
    {
      std::lock_guard lock(shard.mu);
      taken.swap(shard.pending);
    }
    for (Pending& p : taken) all.push_back(std::move(p));
  }
  if (all.empty()) return;
  std::map<Key, std::shared_ptr<const Plan>> current;
  {
    std::shared_lock lock(plans_mu_);
    for (const Pending& p : all) {
      auto it = plans_.find(p.key);
      if (it != plans_.end()) current[p.key] = it->second;
    }
  }
  std::lock_guard lock(windows_mu_);
  for (Pending& p : all) {
    auto plan = current.find(p.key);
    // A sample taken under a plan since replaced (a new baseline) is dropped.
    if (plan == current.end() || plan->second != p.plan) continue;
    auto it = windows_.find(p.key);
    if (it == windows_.end() || it->second.plan != p.plan) {
      std::vector<FeatureKind> kinds;
      for (const FeatureSource& f : p.plan->columns) kinds.push_back(f.kind);
      it = windows_.insert_or_assign(p.key, VersionWindow{p.plan, Window(kinds, p.plan->config)})
               .first;
    }
    it->second.window.Add(std::move(p.rows));
  }
}

DriftReport DriftMonitor::ReportLocked(const Plan& plan, VersionWindow* w, int64_t now_ms) {
  DriftReport r;
  if (w != nullptr) {
    w->window.Trim(now_ms);
    r.count = w->window.count();
    std::tie(r.start_ms, r.end_ms) = w->window.Span();
  }
  if (!plan.baseline) {
    r.status = "no_baseline";
    return r;
  }
  r.baseline_source = plan.baseline->source;
  if (r.count < plan.config.min_window) r.status = "too_small";
  const BaselineProfile& profile = plan.baseline->profile;
  auto compare = [&](const FeatureProfile& f, size_t c) {
    if (w == nullptr) return CompareFeature(f, {}, {}, plan.config);
    return CompareFeature(f, w->window.Numbers(c), w->window.Categories(c), plan.config);
  };
  for (size_t c = 0; c < profile.features.size(); ++c) {
    r.features.push_back(compare(profile.features[c], c));
    r.drift = r.drift || r.features.back().drift;
  }
  if (profile.prediction) {
    r.prediction = compare(*profile.prediction, profile.features.size());
    r.drift = r.drift || r.prediction->drift;
  }
  return r;
}

DriftReport DriftMonitor::Report(const Model& model) {
  Flush();
  std::shared_ptr<const Plan> plan = PlanFor(model);
  std::lock_guard lock(windows_mu_);
  auto it = windows_.find(Key(model.name, model.version));
  VersionWindow* w = it != windows_.end() && it->second.plan == plan ? &it->second : nullptr;
  return ReportLocked(*plan, w, NowUnixMs());
}

StatusOr<BaselineProfile> DriftMonitor::ProfileWindow(const Model& model) {
  Flush();
  std::shared_ptr<const Plan> plan = PlanFor(model);
  std::lock_guard lock(windows_mu_);
  auto it = windows_.find(Key(model.name, model.version));
  if (it == windows_.end() || it->second.plan != plan || it->second.window.count() == 0) {
    return Status::FailedPrecondition(
        "model '" + model.name + "' version " + std::to_string(model.version) +
        " has no sampled requests in its window yet (is monitoring.sample_rate 0?)");
  }
  Window& w = it->second.window;
  w.Trim(NowUnixMs());
  BaselineProfile out;
  out.rows = w.count();
  for (size_t c = 0; c < plan->columns.size(); ++c) {
    const FeatureSource& s = plan->columns[c];
    FeatureProfile f;
    f.name = s.name;
    f.tensor = s.tensor;
    f.column = s.column;
    if (s.kind == FeatureKind::kNumeric) {
      std::vector<double> values = w.Numbers(c);
      ProfileNumeric(values, &f);
    } else {
      std::vector<std::string> values = w.Categories(c);
      ProfileCategorical(values, &f);
    }
    const bool prediction = plan->has_prediction && c + 1 == plan->columns.size();
    if (prediction) {
      out.prediction = std::move(f);
    } else {
      out.features.push_back(std::move(f));
    }
  }
  return out;
}

void DriftMonitor::Reset(const std::string& model, int64_t version) {
  Flush();
  const Key key(model, version);
  {
    std::unique_lock lock(plans_mu_);
    plans_.erase(key);
  }
  std::lock_guard lock(windows_mu_);
  windows_.erase(key);
}

namespace {

std::string Escape(const std::string& v) { return PrometheusLabelValue(v); }

std::string Number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char text[40];
  std::snprintf(text, sizeof(text), "%.9g", v);
  return text;
}

}  // namespace

std::string DriftMonitor::RenderPrometheus(const ModelManager& models) {
  Flush();
  // Versions no longer in the table lose their plans and windows here.
  std::set<Key> live;
  for (const ModelEntry& m : models.List()) {
    for (const VersionEntry& v : m.versions) live.emplace(m.name, v.version);
  }
  std::vector<std::pair<Key, std::shared_ptr<const Plan>>> plans;
  {
    std::unique_lock lock(plans_mu_);
    for (auto it = plans_.begin(); it != plans_.end();) {
      if (live.count(it->first) == 0) {
        it = plans_.erase(it);
        continue;
      }
      plans.emplace_back(it->first, it->second);
      ++it;
    }
  }
  struct Rendered {
    Key key;
    DriftReport report;
  };
  std::vector<Rendered> reports;
  {
    std::lock_guard lock(windows_mu_);
    for (auto it = windows_.begin(); it != windows_.end();) {
      it = live.count(it->first) == 0 ? windows_.erase(it) : std::next(it);
    }
    const int64_t now = NowUnixMs();
    for (const auto& [key, plan] : plans) {
      auto it = windows_.find(key);
      VersionWindow* w = it != windows_.end() && it->second.plan == plan ? &it->second : nullptr;
      reports.push_back({key, ReportLocked(*plan, w, now)});
    }
  }
  std::string out;
  auto header = [&](const char* name, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n";
  };
  auto labels = [](const Key& key) {
    return "model=\"" + Escape(key.first) + "\",version=\"" + std::to_string(key.second) + "\"";
  };
  header("berth_drift_window_rows", "Sampled rows in the version's drift window.");
  for (const Rendered& r : reports) {
    out += "berth_drift_window_rows{" + labels(r.key) + "} " + std::to_string(r.report.count) +
           "\n";
  }
  header("berth_drift_baseline", "1 if the version has a baseline profile to compare with.");
  for (const Rendered& r : reports) {
    out += "berth_drift_baseline{" + labels(r.key) + "} " +
           (r.report.status == "no_baseline" ? "0" : "1") + "\n";
  }
  // Per feature (names from the baseline, bounded by kMaxFeatures); the
  // prediction is feature "" with kind="prediction".
  struct Stat {
    const char* name;
    const char* help;
    bool numeric;
    double FeatureReport::*field;
  };
  const Stat stats[] = {
      {"berth_drift_psi", "Population stability index of the window against the baseline.", true,
       &FeatureReport::psi},
      {"berth_drift_wasserstein",
       "Wasserstein distance of the window to the baseline, over the baseline's std.", true,
       &FeatureReport::wasserstein},
      {"berth_drift_ks", "Kolmogorov-Smirnov statistic of the window against the baseline.", true,
       &FeatureReport::ks},
      {"berth_drift_js", "Jensen-Shannon distance of a categorical feature to the baseline.",
       false, &FeatureReport::js},
      {"berth_drift_chi_square", "Chi-square of a categorical feature against the baseline.",
       false, &FeatureReport::chi_square},
  };
  auto each = [&](const std::function<void(const Key&, const FeatureReport&, const char*)>& f) {
    for (const Rendered& r : reports) {
      for (const FeatureReport& fr : r.report.features) f(r.key, fr, "input");
      if (r.report.prediction) f(r.key, *r.report.prediction, "prediction");
    }
  };
  for (const Stat& s : stats) {
    header(s.name, s.help);
    each([&](const Key& key, const FeatureReport& f, const char* role) {
      if ((f.kind == FeatureKind::kNumeric) != s.numeric || f.status != "ok") return;
      out += std::string(s.name) + "{" + labels(key) + ",feature=\"" + Escape(f.name) +
             "\",role=\"" + role + "\"} " + Number(f.*s.field) + "\n";
    });
  }
  header("berth_drift_detected",
         "1 if the feature drifted (effect size over its threshold, window at least min_window).");
  each([&](const Key& key, const FeatureReport& f, const char* role) {
    out += "berth_drift_detected{" + labels(key) + ",feature=\"" + Escape(f.name) +
           "\",role=\"" + role + "\"} " + (f.drift ? "1" : "0") + "\n";
  });
  return out;
}

}  // namespace berth::drift
