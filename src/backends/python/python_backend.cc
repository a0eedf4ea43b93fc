#include "backends/python/python_backend.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "backends/python/worker_frame.h"
#include "backends/python/worker_process.h"
#include "core/logging.h"
#include "core/thread_annotations.h"

namespace berth {
namespace {

using python::WorkerProcess;
using Clock = std::chrono::steady_clock;

// How often idle workers are checked for having died between requests.
constexpr auto kHealthInterval = std::chrono::seconds(1);
// How often a worker's start checks whether the version is unloading.
constexpr auto kAbortCheck = std::chrono::milliseconds(100);

bool IsPickle(const std::string& file) {
  for (const char* ext : {".pkl", ".pickle", ".joblib"}) {
    if (file.ends_with(ext)) return true;
  }
  return false;
}

// What the worker needs to start: its command line.
struct LaunchPlan {
  python::WorkerLaunch launch;
  std::chrono::milliseconds startup_timeout;
};

// Waits for a started worker's READY; the signature it reports goes to
// `signature` (may be null).
// Gives up early once `*abort` is set (the version is unloading).
Status AwaitReady(WorkerProcess* worker, Clock::time_point deadline,
                  std::chrono::milliseconds startup_timeout, const std::atomic<bool>* abort,
                  ModelSignature* signature) {
  while (!worker->WaitReadable(std::min(deadline, Clock::now() + kAbortCheck))) {
    if (abort != nullptr && abort->load()) {
      return Status::Aborted("the model is unloading");
    }
    if (Clock::now() >= deadline) break;
  }
  std::string body;
  Status received = worker->Receive(deadline, &body);
  if (received.code() == Status::Code::kDeadlineExceeded) {
    return Status::DeadlineExceeded("the Python worker did not load the model within " +
                                    std::to_string(startup_timeout.count()) +
                                    " ms (python.startup_timeout_ms)");
  }
  if (!received.ok()) {
    return Status::FailedPrecondition(received.message() +
                                      " before loading the model (its output is in the server log)");
  }
  ASSIGN_OR_RETURN(python::FrameKind kind, python::KindOf(body));
  if (kind == python::FrameKind::kError) {
    Status error = python::DecodeError(body);
    return Status::InvalidArgument("the Python worker could not load the model: " + error.message());
  }
  ModelSignature reported;
  Status decoded = kind == python::FrameKind::kReady
                       ? python::DecodeReady(body, &reported)
                       : Status::InvalidArgument("expected READY");
  if (!decoded.ok()) return decoded.WithContext("the Python worker's first frame");
  if (signature != nullptr) *signature = std::move(reported);
  return Status::Ok();
}

// Starts `count` workers at once (each imports and loads on its own) and
// waits for all of them; the first one's signature goes to `signature`.
StatusOr<std::vector<std::unique_ptr<WorkerProcess>>> StartWorkers(
    const LaunchPlan& plan, int count, const std::atomic<bool>* abort, ModelSignature* signature) {
  std::vector<std::unique_ptr<WorkerProcess>> workers;
  for (int i = 0; i < count; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<WorkerProcess> worker, WorkerProcess::Spawn(plan.launch));
    workers.push_back(std::move(worker));
  }
  const auto deadline = Clock::now() + plan.startup_timeout;
  for (size_t i = 0; i < workers.size(); ++i) {
    RETURN_IF_ERROR(AwaitReady(workers[i].get(), deadline, plan.startup_timeout, abort,
                               i == 0 ? signature : nullptr));
  }
  return workers;
}

StatusOr<std::unique_ptr<WorkerProcess>> StartWorker(const LaunchPlan& plan,
                                                     const std::atomic<bool>* abort) {
  ASSIGN_OR_RETURN(auto workers, StartWorkers(plan, 1, abort, nullptr));
  return std::move(workers.front());
}

class PythonBackend final : public Backend {
 public:
  PythonBackend(std::string model, ModelSignature signature, LaunchPlan plan,
                std::chrono::milliseconds timeout, int workers, PythonWorkerStats* stats)
      : model_(std::move(model)),
        stats_(stats),
        signature_(std::move(signature)),
        plan_(std::move(plan)),
        timeout_(timeout),
        capacity_(workers) {}

  // Takes the workers the factory started (all ready) and starts the keeper.
  void Start(std::vector<std::unique_ptr<WorkerProcess>> workers) {
    {
      std::lock_guard lock(mu_);
      live_ = static_cast<int>(workers.size());
      idle_ = std::move(workers);
    }
    keeper_ = std::thread([this] { Keep(); });
  }

  ~PythonBackend() override {
    aborting_ = true;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (keeper_.joinable()) keeper_.join();
    std::vector<std::unique_ptr<WorkerProcess>> idle;
    {
      std::lock_guard lock(mu_);
      idle.swap(idle_);
    }
    idle.clear();  // each destructor stops its process
    LOG_INFO("stopped the Python workers", {{"model", model_}});
  }

  const ModelSignature& signature() const override { return signature_; }

  Status Execute(std::span<const Tensor> inputs, std::span<const std::string> output_names,
                 std::vector<Tensor>* outputs, BackendTimings* timings) override {
    ASSIGN_OR_RETURN(std::string frame, python::EncodeInfer(inputs, output_names));
    ASSIGN_OR_RETURN(std::unique_ptr<WorkerProcess> worker, Acquire());
    const auto start = Clock::now();
    const auto deadline = start + timeout_;
    if (timings != nullptr) timings->inputs_ready = start;
    Status io = worker->Send(frame, deadline);
    std::string body;
    if (io.ok()) io = worker->Receive(deadline, &body);
    if (timings != nullptr) timings->engine_done = Clock::now();
    if (!io.ok()) {
      // The worker is mid-request or gone: it is never reused.
      worker->Kill();
      const std::string how = worker->Describe();
      LOG_WARN("replacing a Python worker",
               {{"model", model_}, {"pid", std::to_string(worker->pid())}, {"reason", io.message()}});
      Replace(std::move(worker));
      Count(io.code() == Status::Code::kDeadlineExceeded ? "timeout" : "crash");
      if (io.code() == Status::Code::kDeadlineExceeded) {
        return Status::DeadlineExceeded("the model's Python code did not answer within " +
                                        std::to_string(timeout_.count()) +
                                        " ms (python.timeout_ms); its worker was stopped and is "
                                        "being restarted");
      }
      return Status::Internal("the model's Python worker " + how +
                              " while running the request; it is being restarted");
    }
    Status result = Decode(body, output_names, outputs);
    if (result.code() == Status::Code::kInternal && !python::KindOf(body).ok()) {
      worker->Kill();
      Replace(std::move(worker));
      Count("crash");
    } else {
      Release(std::move(worker));
    }
    return result;
  }

 private:
  Status Decode(const std::string& body, std::span<const std::string> output_names,
                std::vector<Tensor>* outputs) const {
    auto kind = python::KindOf(body);
    if (!kind.ok()) return Status::Internal("the Python worker broke the protocol: " + kind.status().message());
    if (*kind == python::FrameKind::kError) {
      Status error = python::DecodeError(body);
      return Status(error.code(), "the model's Python code: " + error.message());
    }
    if (*kind != python::FrameKind::kResult) {
      return Status::Internal("the Python worker answered with an unexpected frame");
    }
    Status decoded = python::DecodeResult(body, outputs);
    if (!decoded.ok()) return Status::Internal("the Python worker's result: " + decoded.message());
    if (outputs->size() != output_names.size()) {
      return Status::Internal("the Python worker returned " + std::to_string(outputs->size()) +
                              " outputs for " + std::to_string(output_names.size()) + " requested");
    }
    for (size_t i = 0; i < outputs->size(); ++i) {
      const Tensor& t = (*outputs)[i];
      if (t.name() != output_names[i]) {
        return Status::Internal("the Python worker returned output '" + t.name() + "' where '" +
                                output_names[i] + "' was requested");
      }
      for (const TensorSpec& spec : signature_.outputs) {
        if (spec.name == t.name() && spec.datatype != t.datatype()) {
          return Status::Internal("the model's Python code returned output '" + t.name() + "' as " +
                                  std::string(DataTypeName(t.datatype())) + " but it is declared " +
                                  std::string(DataTypeName(spec.datatype)));
        }
      }
    }
    return Status::Ok();
  }

  // A worker of the pool, waiting while all are busy; one that died while
  // idle is replaced first.
  StatusOr<std::unique_ptr<WorkerProcess>> Acquire() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [this] { return !idle_.empty() || live_ < capacity_ || stopping_; });
      if (stopping_) return Status::Unavailable("the model is unloading");
      if (!idle_.empty()) {
        std::unique_ptr<WorkerProcess> worker = std::move(idle_.back());
        idle_.pop_back();
        if (worker->Alive()) return worker;
        LOG_WARN("a Python worker died while idle; restarting it",
                 {{"model", model_}, {"how", worker->Describe()}});
        Count("idle");
        --live_;
        lock.unlock();
        worker.reset();
        lock.lock();
        continue;
      }
      // A worker is missing (it failed to restart): start one for this request.
      ++live_;
      lock.unlock();
      auto started = StartWorker(plan_, &aborting_);
      lock.lock();
      if (!started.ok()) {
        --live_;
        cv_.notify_all();
        return Status::Unavailable("cannot restart the model's Python worker: " +
                                   started.status().message());
      }
      return std::move(started).value();
    }
  }

  void Release(std::unique_ptr<WorkerProcess> worker) {
    {
      std::lock_guard lock(mu_);
      idle_.push_back(std::move(worker));
    }
    cv_.notify_one();
  }

  // Drops a broken worker; the keeper thread starts its replacement.
  void Replace(std::unique_ptr<WorkerProcess> worker) {
    worker.reset();
    {
      std::lock_guard lock(mu_);
      --live_;
      ++to_restart_;
    }
    cv_.notify_all();
  }

  // The keeper: restarts replaced workers off the request path, and checks
  // idle workers' health between requests.
  void Keep() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      cv_.wait_for(lock, kHealthInterval, [this] { return stopping_ || to_restart_ > 0; });
      if (stopping_) break;
      for (size_t i = 0; i < idle_.size();) {
        if (idle_[i]->Alive()) {
          ++i;
          continue;
        }
        LOG_WARN("a Python worker died while idle; restarting it",
                 {{"model", model_}, {"how", idle_[i]->Describe()}});
        Count("idle");
        idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(i));
        --live_;
        ++to_restart_;
      }
      while (to_restart_ > 0 && live_ < capacity_ && !stopping_) {
        --to_restart_;
        ++live_;
        lock.unlock();
        auto started = StartWorker(plan_, &aborting_);
        lock.lock();
        if (started.ok()) {
          idle_.push_back(std::move(started).value());
        } else {
          // Left missing: the next request tries again and reports why.
          --live_;
          LOG_ERROR("cannot restart a Python worker",
                    {{"model", model_}, {"error", started.status().message()}});
        }
        cv_.notify_all();
      }
      to_restart_ = 0;
    }
  }

  // Counts the restarts it gives (may be null).
  void Count(const char* reason) {
    if (stats_ != nullptr) stats_->CountRestart(model_, reason);
  }

  const std::string model_;
  PythonWorkerStats* const stats_;
  const ModelSignature signature_;
  const LaunchPlan plan_;
  const std::chrono::milliseconds timeout_;
  const int capacity_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<WorkerProcess>> idle_ GUARDED_BY(mu_);
  // Workers that exist or are starting (idle, busy or being started).
  int live_ GUARDED_BY(mu_) = 0;
  int to_restart_ GUARDED_BY(mu_) = 0;
  bool stopping_ GUARDED_BY(mu_) = false;
  // Set first by the destructor: a worker being restarted stops waiting
  // for its READY, so that unloading never waits out a slow start.
  std::atomic<bool> aborting_{false};
  std::thread keeper_;
};

class PythonFactory final : public BackendFactory {
 public:
  explicit PythonFactory(PythonFactoryOptions options) : options_(std::move(options)) {}

  std::string_view name() const override { return "python"; }
  std::string_view platform() const override { return "python"; }
  std::string_view model_filename() const override { return "model.py"; }
  std::string ModelFileFor(const ModelConfig& config) const override {
    return config.python.model_file;
  }

  StatusOr<std::unique_ptr<Backend>> Load(const ModelConfig& config,
                                          const std::filesystem::path& model_file) override {
    const std::string file = model_file.filename().string();
    const bool pickle = IsPickle(file);
    const bool mlflow = file == "MLmodel";
    if (!pickle && !mlflow && !file.ends_with(".py")) {
      return Status::InvalidArgument("python.model_file '" + file +
                                     "' is none of: a model.py, a pickle (.pkl, .pickle, .joblib), "
                                     "an MLflow MLmodel");
    }
    if ((pickle || mlflow) && !config.trust) {
      return Status::FailedPrecondition(
          file + " is " + (pickle ? "a pickle" : "an MLflow model (its python_model is a pickle)") +
          ": loading it runs whatever code it holds. Refused: set `trust: true` in the model's "
          "config to serve it with the Python runtime");
    }
    LaunchPlan plan;
    plan.launch.interpreter =
        config.python.interpreter.empty() ? options_.interpreter : config.python.interpreter;
    plan.launch.args = {"-m", "berth.runtime.worker", "--fd", "3", "--model-file",
                        std::filesystem::absolute(model_file).string()};
    for (const TensorSpec& out : config.outputs) {
      plan.launch.args.push_back("--output");
      plan.launch.args.push_back(out.name + "=" + std::string(DataTypeName(out.datatype)));
    }
    plan.launch.log_name = config.name + "/" + model_file.parent_path().filename().string();
    plan.startup_timeout = std::chrono::milliseconds(config.python.startup_timeout_ms);

    ModelSignature reported;
    ASSIGN_OR_RETURN(auto workers, StartWorkers(plan, config.instance_count, nullptr, &reported));
    // The model's own declaration wins; the config is reconciled with it by
    // the repository. A pickle declares nothing: the config must.
    ModelSignature signature = reported;
    if (signature.inputs.empty()) signature.inputs = config.inputs;
    if (signature.outputs.empty()) signature.outputs = config.outputs;
    if (signature.inputs.empty() || signature.outputs.empty()) {
      return Status::InvalidArgument(
          "the model declares no " + std::string(signature.inputs.empty() ? "inputs" : "outputs") +
          ": list them under inputs: and outputs: in its config (a pickle carries no signature)");
    }
    auto backend = std::make_unique<PythonBackend>(
        config.name, std::move(signature), std::move(plan),
        std::chrono::milliseconds(config.python.timeout_ms), config.instance_count,
        options_.stats);
    backend->Start(std::move(workers));
    return std::unique_ptr<Backend>(std::move(backend));
  }

 private:
  const PythonFactoryOptions options_;
};

}  // namespace

void PythonWorkerStats::CountRestart(const std::string& model, const std::string& reason) {
  std::lock_guard lock(mu_);
  ++restarts_[{model, reason}];
}

std::string PythonWorkerStats::RenderPrometheus() const {
  std::lock_guard lock(mu_);
  if (restarts_.empty()) return "";
  std::string out =
      "# HELP berth_python_worker_restarts_total Python workers replaced: crashed during a "
      "request, killed at python.timeout_ms, or died while idle.\n"
      "# TYPE berth_python_worker_restarts_total counter\n";
  for (const auto& [key, n] : restarts_) {
    // Model names are validated identifiers (core/model_name.h): no quoting needed.
    out += "berth_python_worker_restarts_total{model=\"" + key.first + "\",reason=\"" +
           key.second + "\"} " + std::to_string(n) + "\n";
  }
  return out;
}

std::unique_ptr<BackendFactory> CreatePythonFactory(PythonFactoryOptions options) {
  return std::make_unique<PythonFactory>(std::move(options));
}

}  // namespace berth
