// The in-memory form of one model's config.{yaml,json}. Parsed and validated
// by registry/config_parser.h; read by the core and by backends.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/alert_rule.h"
#include "core/tensor.h"

namespace berth {

// Which versions found on disk are served. See registry/version_policy.h.
struct VersionPolicy {
  enum class Kind { kLatest, kAll, kSpecific };
  Kind kind = Kind::kLatest;
  int64_t latest = 1;              // kLatest: how many of the highest versions
  std::vector<int64_t> specific;   // kSpecific: exactly these versions

  bool operator==(const VersionPolicy&) const = default;
};

struct OnnxRuntimeOptions {
  int intra_op_threads = 1;  // 0 = ONNX Runtime's default (one per core)
  int inter_op_threads = 1;
  // disable | basic | extended | all
  std::string graph_optimization_level = "all";

  bool operator==(const OnnxRuntimeOptions&) const = default;
};

// Gathers concurrent requests into one backend call (core/dynamic_batcher.h).
struct DynamicBatchingConfig {
  int64_t max_queue_delay_microseconds = 100;
  std::vector<int64_t> preferred_batch_sizes;
  int64_t max_queue_size = 1024;  // requests beyond it are refused as UNAVAILABLE

  bool operator==(const DynamicBatchingConfig&) const = default;
};

// The requests a version runs before it is published (core/warmup.h), so that
// the first real request does not pay the session's first-run cost and a
// version that cannot answer is never switched to.
struct WarmupConfig {
  // How many times the warm-up request runs; 0: no warm-up.
  int count = 1;
  // The request's inputs, each with its data (zeros or empty strings when
  // the config gave none). Empty: one request generated from the signature.
  std::vector<Tensor> inputs;
};

// Whether and how a version's predictions are kept to be joined with the
// ground truth clients send later (monitoring/feedback/): `monitoring:
// feedback:` in config.yaml. Off unless that section is present. See
// docs/monitoring.md "Accuracy from ground truth".
struct FeedbackConfig {
  bool enabled = false;
  // How long a prediction waits for its truth; after it, feedback for it is
  // "late". Fractional hours are allowed.
  double retention_hours = 168;
  // At most this many predictions kept per model (the oldest go first).
  int64_t max_predictions = 1'000'000;
  // The rolling metrics use the newest this many joined predictions.
  int64_t window_count = 1000;
  // "classification" or "regression"; empty: from the output's datatype
  // (integer, BOOL or BYTES: classification; floating point: regression).
  std::string task;
  // The output holding the prediction (one value per row); empty: the
  // first such output.
  std::string label_output;
  // Classification: the output holding class probabilities ([rows,
  // classes]); empty: the first floating-point output with two or more
  // columns. Only binary models use it (ROC-AUC).
  std::string score_output;
  // The positive class for binary precision, recall, F1 and ROC-AUC; its
  // probability is the score output's column of that number (else 1).
  std::string positive_class = "1";

  bool operator==(const FeedbackConfig&) const = default;
};

// What the drift monitor (monitoring/drift/drift_monitor.h) samples and how
// it decides: `monitoring:` in config.yaml. See docs/monitoring.md.
struct MonitoringConfig {
  // Fraction of requests whose tensors the monitor reads (0: none, 1: all).
  double sample_rate = 0.1;
  // The sliding window: at most this many sampled rows, none older than
  // window_seconds (0: no time limit).
  int64_t window_count = 10000;
  int64_t window_seconds = 3600;
  // Below this many rows a feature is reported "too_small", never drifted.
  int64_t min_window = 100;
  // Drift is an effect size at or above its threshold; 0 turns a test off.
  double psi_threshold = 0.2;
  double wasserstein_threshold = 0;  // normalised by the baseline's std
  double ks_threshold = 0;
  double js_threshold = 0.1;
  FeedbackConfig feedback;
  // Inputs and outputs whose data the payload log never writes (besides
  // --payload-log-redact; monitoring/logs/payload_log.h). Each must name an
  // input or output of the model.
  std::vector<std::string> redact;

  bool operator==(const MonitoringConfig&) const = default;
};

// `python:` in config.yaml, for `backend: python` (backends/python/): the
// model runs in worker processes the server manages. See docs/python.md.
struct PythonRuntimeConfig {
  // The entry file in each version directory: model.py (a class with
  // load()/predict()), a pickle (*.pkl, *.joblib; needs `trust: true`) or
  // MLmodel (an MLflow pyfunc directory).
  std::string model_file = "model.py";
  // The interpreter; empty: the server's --python.
  std::string interpreter;
  // One request's time limit in the worker; past it the worker is killed
  // and restarted and the request fails DEADLINE_EXCEEDED.
  int64_t timeout_ms = 30000;
  // How long a worker may take to import and load the model.
  int64_t startup_timeout_ms = 120000;

  bool operator==(const PythonRuntimeConfig&) const = default;
};

struct ModelConfig {
  std::string name;
  std::string backend = "onnx";
  // 0: the model does not batch. >0: the first dimension of every input and
  // output is the batch dimension and a request may carry at most this many.
  int64_t max_batch_size = 0;
  VersionPolicy version_policy;
  OnnxRuntimeOptions onnxruntime;
  // Absent: each request runs on its own, on the thread that received it.
  std::optional<DynamicBatchingConfig> dynamic_batching;
  // Workers taking batches from the dynamic batcher's queue, each running
  // the model's one (thread-safe) session.
  int instance_count = 1;
  // Floating-point inputs refuse NaN and +-Infinity unless this is set.
  bool allow_nan = false;
  // Optional declarations; when empty they are read from the model file.
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
  WarmupConfig warmup;
  MonitoringConfig monitoring;
  // Loading runs the model's own code (a pickle, model.py): allowed only
  // when the config says so. Read by the python backend.
  bool trust = false;
  PythonRuntimeConfig python;
  // Alert rules for every version of this model (`alerts:`; see
  // core/alert_rule.h). A rule named like one of the server's alerts file
  // replaces it for this model.
  std::vector<AlertRule> alerts;
};

}  // namespace berth
