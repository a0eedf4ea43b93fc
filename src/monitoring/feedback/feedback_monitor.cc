#include "monitoring/feedback/feedback_monitor.h"

#include <rapidjson/document.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <set>

#include "core/logging.h"
#include "core/model.h"
#include "monitoring/metrics.h"
#include "monitoring/tensor_values.h"

namespace berth::feedback {
namespace {

// Ids longer than this are not kept (the request is answered as usual).
constexpr size_t kMaxStoredIdBytes = 256;
// Truths and predicted labels longer than this are cut, so that a row stays
// small whatever a model or a client puts in it.
constexpr size_t kMaxLabelBytes = 256;

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A window is read from the store again when older than this, so that the
// truths other replicas joined reach this one's metrics.
constexpr int64_t kWindowRereadMs = 5000;

int64_t RetentionMs(const FeedbackConfig& c) {
  return static_cast<int64_t>(c.retention_hours * 3600.0 * 1000.0);
}

int64_t Width(const std::vector<int64_t>& shape) { return shape.size() >= 2 ? shape.back() : 1; }

bool IsFloat(DataType t) {
  return t == DataType::kFp16 || t == DataType::kFp32 || t == DataType::kFp64;
}

const Tensor* FindTensor(const std::vector<Tensor>& tensors, const std::string& name) {
  for (const Tensor& t : tensors) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

// Whether `t` holds its `count` elements (fixed-size data or strings).
bool Holds(const Tensor& t, int64_t count) {
  if (t.datatype() == DataType::kBytes) return static_cast<int64_t>(t.strings().size()) >= count;
  return static_cast<int64_t>(t.bytes().size()) >=
         count * static_cast<int64_t>(DataTypeByteSize(t.datatype()));
}

std::string LabelText(const Tensor& t, int64_t i) {
  if (t.datatype() == DataType::kBytes) {
    return t.strings()[static_cast<size_t>(i)].substr(0, kMaxLabelBytes);
  }
  return NumberText(ElementAsDouble(t, i));
}

size_t ThreadShard(size_t shards) {
  thread_local const size_t shard = std::hash<std::thread::id>()(std::this_thread::get_id());
  return shard % shards;
}

// The version's metadata.metrics, by name (numbers only).
MetricValues RegisteredMetrics(RegistryStore* store, const std::string& model, int64_t version) {
  MetricValues out;
  auto versions = store->Versions(model);
  if (!versions.ok()) return out;
  for (const VersionRecord& v : *versions) {
    if (v.version != version) continue;
    rapidjson::Document doc;
    doc.Parse(v.metadata_json.data(), v.metadata_json.size());
    if (doc.HasParseError() || !doc.IsObject()) break;
    auto metrics = doc.FindMember("metrics");
    if (metrics == doc.MemberEnd() || !metrics->value.IsObject()) break;
    for (const auto& m : metrics->value.GetObject()) {
      if (m.value.IsNumber()) out.emplace_back(m.name.GetString(), m.value.GetDouble());
    }
  }
  return out;
}

const double* FindMetric(const MetricValues& values, const std::string& name) {
  for (const auto& [n, v] : values) {
    if (n == name) return &v;
  }
  return nullptr;
}

Status NotKept(const Model& model) {
  return Status::FailedPrecondition("model '" + model.name + "' version " +
                                    std::to_string(model.version) +
                                    " keeps no predictions for feedback: set "
                                    "monitoring.feedback in its config.yaml "
                                    "(docs/monitoring.md)");
}

}  // namespace

FeedbackMonitor::FeedbackMonitor(RegistryStore* store, const ModelManager* models)
    : store_(store), models_(models) {}

FeedbackMonitor::~FeedbackMonitor() { Stop(); }

void FeedbackMonitor::Start() {
  std::lock_guard lock(thread_mu_);
  if (thread_.joinable() || store_ == nullptr) return;
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void FeedbackMonitor::Stop() {
  {
    std::lock_guard lock(thread_mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  Flush();
}

void FeedbackMonitor::Loop() {
  std::unique_lock lock(thread_mu_);
  auto last_expiry = std::chrono::steady_clock::now();
  while (!cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; })) {
    lock.unlock();
    Flush();
    // Retention once a minute: a prediction is dropped at most a minute
    // after its time, and the deletes stay off the flushes' way.
    if (std::chrono::steady_clock::now() - last_expiry >= std::chrono::minutes(1)) {
      Expire();
      last_expiry = std::chrono::steady_clock::now();
    }
    lock.lock();
  }
}

std::shared_ptr<const FeedbackMonitor::Plan> FeedbackMonitor::BuildPlan(const Model& model) {
  auto plan = std::make_shared<Plan>();
  plan->config = model.config.monitoring.feedback;
  const FeedbackConfig& c = plan->config;
  const auto& outputs = model.signature.outputs;
  for (const TensorSpec& out : outputs) {
    if (c.label_output.empty() ? Width(out.shape) == 1 : out.name == c.label_output) {
      plan->label_output = out.name;
      plan->regression = c.task.empty() ? IsFloat(out.datatype) : c.task == "regression";
      break;
    }
  }
  if (plan->regression) return plan;
  for (const TensorSpec& out : outputs) {
    const bool fits = IsFloat(out.datatype) && Width(out.shape) >= 2;
    if (c.score_output.empty() ? fits && Width(out.shape) == 2 : out.name == c.score_output) {
      plan->score_output = out.name;
      break;
    }
  }
  char* end = nullptr;
  const long long k = std::strtoll(c.positive_class.c_str(), &end, 10);
  if (*end == '\0' && k >= 0 && k < 1'000'000) plan->score_column = k;
  return plan;
}

std::shared_ptr<const FeedbackMonitor::Plan> FeedbackMonitor::PlanFor(const Model& model) {
  const Key key(model.name, model.version);
  {
    std::shared_lock lock(plans_mu_);
    auto it = plans_.find(key);
    // A version reloaded under another config (a load with a config
    // override) gets a new plan.
    if (it != plans_.end() && it->second->config == model.config.monitoring.feedback) {
      return it->second;
    }
  }
  auto plan = BuildPlan(model);
  std::unique_lock lock(plans_mu_);
  auto& slot = plans_[key];
  if (slot == nullptr || slot->config != plan->config) slot = std::move(plan);
  return slot;
}

void FeedbackMonitor::OnPrediction(const Model& model, const InferenceResponse& response) {
  if (store_ == nullptr || response.id.size() > kMaxStoredIdBytes) return;
  const std::shared_ptr<const Plan> plan = PlanFor(model);
  if (plan->label_output.empty()) return;
  const Tensor* label = FindTensor(response.outputs, plan->label_output);
  if (label == nullptr) return;
  const int64_t width = std::max<int64_t>(Width(label->shape()), 1);
  const int64_t rows = label->element_count() / width;
  if (rows <= 0 || !Holds(*label, rows * width)) return;
  const Tensor* score = nullptr;
  if (!plan->score_output.empty()) {
    score = FindTensor(response.outputs, plan->score_output);
    if (score != nullptr &&
        (Width(score->shape()) <= plan->score_column ||
         score->element_count() != rows * Width(score->shape()) ||
         !Holds(*score, score->element_count()) || score->datatype() == DataType::kBytes)) {
      score = nullptr;
    }
  }
  if (pending_.fetch_add(rows, std::memory_order_relaxed) + rows > kMaxPending) {
    pending_.fetch_sub(rows, std::memory_order_relaxed);
    lost_.fetch_add(rows, std::memory_order_relaxed);
    return;
  }
  const int64_t now = NowUnixMs();
  Shard& shard = shards_[ThreadShard(kShards)];
  std::lock_guard lock(shard.mu);
  for (int64_t r = 0; r < rows; ++r) {
    PredictionRecord record{
        model.name, response.id, r, model.version, now, LabelText(*label, r * width), std::nullopt};
    if (score != nullptr) {
      const double p = ElementAsDouble(*score, r * Width(score->shape()) + plan->score_column);
      if (std::isfinite(p)) record.score = p;
    }
    shard.pending.push_back(std::move(record));
  }
}

void FeedbackMonitor::Flush() {
  if (store_ == nullptr) return;
  std::lock_guard flush(flush_mu_);
  std::vector<PredictionRecord> batch;
  for (Shard& shard : shards_) {
    std::vector<PredictionRecord> taken;
    {
      std::lock_guard lock(shard.mu);
      taken.swap(shard.pending);
    }
    batch.insert(batch.end(), std::make_move_iterator(taken.begin()),
                 std::make_move_iterator(taken.end()));
  }
  if (batch.empty()) return;
  const auto n = static_cast<int64_t>(batch.size());
  pending_.fetch_sub(n, std::memory_order_relaxed);
  Status saved = store_->SavePredictions(batch);
  if (saved.ok()) {
    written_.fetch_add(n, std::memory_order_relaxed);
    if (failing_) LOG_INFO("predictions are written to the registry store again");
  } else {
    lost_.fetch_add(n, std::memory_order_relaxed);
    if (!failing_) {
      LOG_WARN(
          "cannot write predictions to the registry store; they are lost "
          "for feedback",
          {{"error", saved.message()}, {"rows", std::to_string(n)}});
    }
  }
  failing_ = !saved.ok();
}

void FeedbackMonitor::Expire() {
  // Every model whose serving versions keep predictions, with the longest
  // retention and largest cap among them.
  std::map<std::string, FeedbackConfig> models;
  models_->ForEachReadyModel([&](const Model& m) {
    const FeedbackConfig& c = m.config.monitoring.feedback;
    if (!c.enabled) return;
    auto [it, added] = models.try_emplace(m.name, c);
    if (!added) {
      it->second.retention_hours = std::max(it->second.retention_hours, c.retention_hours);
      it->second.max_predictions = std::max(it->second.max_predictions, c.max_predictions);
    }
  });
  const int64_t now = NowUnixMs();
  for (const auto& [name, c] : models) {
    const int64_t retention = RetentionMs(c);
    // The keys stay one more retention period, to tell late feedback apart
    // from feedback for an id never seen.
    Status s =
        store_->ExpirePredictions(name, now - retention, now - 2 * retention, c.max_predictions);
    if (!s.ok()) {
      LOG_WARN("cannot apply the feedback retention", {{"model", name}, {"error", s.message()}});
    }
  }
}

StatusOr<FeedbackMonitor::Window*> FeedbackMonitor::WindowFor(const Model& model,
                                                              const Plan& plan) {
  Window& w = windows_[Key(model.name, model.version)];
  const int64_t now = NowUnixMs();
  if (!w.registered_read) {
    w.registered = RegisteredMetrics(store_, model.name, model.version);
    w.registered_read = true;
  }
  if (now - w.read_ms > kWindowRereadMs) {
    ASSIGN_OR_RETURN(std::vector<JoinedPrediction> joined,
                     store_->JoinedPredictions(model.name, model.version,
                                               plan.config.window_count));
    w.joined.assign(joined.rbegin(), joined.rend());
    w.read_ms = now;
  }
  const int64_t oldest = now - RetentionMs(plan.config);
  while (!w.joined.empty() && w.joined.front().created_ms < oldest) w.joined.pop_front();
  while (static_cast<int64_t>(w.joined.size()) > plan.config.window_count) w.joined.pop_front();
  return &w;
}

StatusOr<FeedbackCounts> FeedbackMonitor::AddFeedback(const Model& model,
                                                      std::optional<int64_t> version,
                                                      const std::vector<FeedbackItem>& items) {
  if (!model.config.monitoring.feedback.enabled) return NotKept(model);
  if (store_ == nullptr) {
    return Status::FailedPrecondition(
        "this server runs without a registry store (--registry none): "
        "predictions are not kept "
        "for feedback");
  }
  Flush();
  std::lock_guard lock(mu_);
  const int64_t now = NowUnixMs();
  ASSIGN_OR_RETURN(auto outcomes,
                   store_->JoinFeedback(model.name, version, items, now,
                                        now - RetentionMs(model.config.monitoring.feedback)));
  FeedbackCounts counts;
  std::set<int64_t> joined;  // versions
  for (auto& [outcome, j] : outcomes) {
    switch (outcome) {
      case FeedbackOutcome::kJoined:
        ++counts.joined;
        joined.insert(j.version);
        break;
      case FeedbackOutcome::kUnknown: ++counts.unknown; break;
      case FeedbackOutcome::kDuplicate: ++counts.duplicate; break;
      case FeedbackOutcome::kLate: ++counts.late; break;
    }
  }
  FeedbackCounts& total = counts_[model.name];
  total.joined += counts.joined;
  total.unknown += counts.unknown;
  total.duplicate += counts.duplicate;
  total.late += counts.late;
  // The store is the window's truth (other replicas join too): the
  // versions joined here read theirs again on next use.
  for (int64_t v : joined) {
    if (auto it = windows_.find(Key(model.name, v)); it != windows_.end()) it->second.read_ms = 0;
  }
  return counts;
}

StatusOr<AccuracyReport> FeedbackMonitor::ReportLocked(const Model& model) {
  if (!model.config.monitoring.feedback.enabled) return NotKept(model);
  if (store_ == nullptr) return Status::FailedPrecondition("no registry store");
  const std::shared_ptr<const Plan> plan = PlanFor(model);
  ASSIGN_OR_RETURN(Window * w, WindowFor(model, *plan));
  AccuracyReport r;
  r.task = plan->regression ? "regression" : "classification";
  r.count = static_cast<int64_t>(w->joined.size());
  r.window_limit = plan->config.window_count;
  std::vector<LabeledPair> pairs;
  pairs.reserve(w->joined.size());
  for (const JoinedPrediction& j : w->joined) {
    pairs.push_back({j.predicted, j.truth, j.score});
    r.start_ms = r.start_ms == 0 ? j.labeled_ms : std::min(r.start_ms, j.labeled_ms);
    r.end_ms = std::max(r.end_ms, j.labeled_ms);
  }
  r.metrics = plan->regression ? RegressionMetrics(pairs)
                               : ClassificationMetrics(pairs, plan->config.positive_class);
  r.registered = w->registered;
  for (const auto& [name, live] : r.metrics) {
    if (const double* registered = FindMetric(r.registered, name)) {
      r.drop.emplace_back(name, Drop(name, *registered, live));
    }
  }
  if (auto it = counts_.find(model.name); it != counts_.end()) r.feedback = it->second;
  return r;
}

StatusOr<AccuracyReport> FeedbackMonitor::Report(const Model& model) {
  std::lock_guard lock(mu_);
  return ReportLocked(model);
}

std::optional<double> FeedbackMonitor::Lookup(const std::string& model, int64_t version,
                                              const std::string& metric, bool drop) {
  auto handle = models_->Resolve(model, std::to_string(version));
  if (!handle.ok()) return std::nullopt;
  std::lock_guard lock(mu_);
  auto report = ReportLocked(**handle);
  if (!report.ok()) return std::nullopt;
  const double* v = FindMetric(drop ? report->drop : report->metrics, metric);
  return v != nullptr ? std::optional<double>(*v) : std::nullopt;
}

std::optional<double> FeedbackMonitor::AccuracyDrop(const std::string& model, int64_t version,
                                                    const std::string& metric) {
  return Lookup(model, version, metric, true);
}

std::optional<double> FeedbackMonitor::Accuracy(const std::string& model, int64_t version,
                                                const std::string& metric) {
  return Lookup(model, version, metric, false);
}

std::string FeedbackMonitor::RenderPrometheus() {
  std::vector<ModelHandle> versions;
  for (const ModelEntry& entry : models_->List()) {
    for (const VersionEntry& v : entry.versions) {
      if (v.model != nullptr && v.model->config.monitoring.feedback.enabled) {
        versions.push_back(v.model);
      }
    }
  }
  std::string accuracy, registered, drop, window, feedback;
  auto labels = [](const Model& m) {
    return "model=\"" + PrometheusLabelValue(m.name) + "\",version=\"" + std::to_string(m.version) +
           "\"";
  };
  auto number = [](double v) {
    char text[40];
    std::snprintf(text, sizeof(text), "%.17g", v);
    return std::string(text);
  };
  std::set<Key> live;
  for (const ModelHandle& m : versions) live.emplace(m->name, m->version);
  {
    // Versions no longer served (or no longer keeping predictions) lose
    // their plans and windows here; their rows stay in the store.
    std::unique_lock lock(plans_mu_);
    std::erase_if(plans_, [&](const auto& kv) { return live.count(kv.first) == 0; });
  }
  {
    std::lock_guard lock(mu_);
    std::erase_if(windows_, [&](const auto& kv) { return live.count(kv.first) == 0; });
    if (store_ != nullptr) {
      for (const ModelHandle& m : versions) {
        auto r = ReportLocked(*m);
        if (!r.ok()) continue;
        window +=
            "berth_feedback_window_rows{" + labels(*m) + "} " + std::to_string(r->count) + "\n";
        for (const auto& [name, v] : r->metrics) {
          accuracy += "berth_model_accuracy{" + labels(*m) + ",metric=\"" + name + "\"} " +
                      number(v) + "\n";
        }
        for (const auto& [name, v] : r->registered) {
          if (FindMetric(r->metrics, name) == nullptr) continue;
          registered += "berth_model_accuracy_registered{" + labels(*m) + ",metric=\"" +
                        PrometheusLabelValue(name) + "\"} " + number(v) + "\n";
        }
        for (const auto& [name, v] : r->drop) {
          drop += "berth_model_accuracy_drop{" + labels(*m) + ",metric=\"" + name + "\"} " +
                  number(v) + "\n";
        }
      }
    }
    for (const auto& [name, c] : counts_) {
      const std::string model = "model=\"" + PrometheusLabelValue(name) + "\"";
      for (auto [outcome, n] : {std::pair{"joined", c.joined}, std::pair{"unknown", c.unknown},
                                std::pair{"duplicate", c.duplicate}, std::pair{"late", c.late}}) {
        feedback += "berth_feedback_total{" + model + ",outcome=\"" + outcome + "\"} " +
                    std::to_string(n) + "\n";
      }
    }
  }
  auto family = [](const char* name, const char* type, const char* help, const std::string& rows) {
    return std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
           rows;
  };
  return family("berth_model_accuracy", "gauge",
                "The version's rolling metric over its window of predictions "
                "joined with "
                "their ground truth.",
                accuracy) +
         family("berth_model_accuracy_registered", "gauge",
                "The metric the version was registered with (its metadata's "
                "metrics).",
                registered) +
         family("berth_model_accuracy_drop", "gauge",
                "How much worse the rolling metric is than the registered one "
                "(positive: worse).",
                drop) +
         family("berth_feedback_window_rows", "gauge",
                "Joined predictions in the version's feedback window.", window) +
         family("berth_feedback_total", "counter",
                "Feedback items by what became of them: joined, unknown (no "
                "such prediction), "
                "duplicate (truth already given), late (after the retention).",
                feedback) +
         family("berth_feedback_predictions_written_total", "counter",
                "Predictions written to the registry store for feedback.",
                "berth_feedback_predictions_written_total " +
                    std::to_string(written_.load(std::memory_order_relaxed)) + "\n") +
         family("berth_feedback_predictions_lost_total", "counter",
                "Predictions not kept for feedback: the queue to the store was "
                "full or the "
                "write failed.",
                "berth_feedback_predictions_lost_total " +
                    std::to_string(lost_.load(std::memory_order_relaxed)) + "\n");
}

}  // namespace berth::feedback
