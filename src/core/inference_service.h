// InferenceService: the one inference path that every front end calls.
// Resolves the model version, validates the request, hands it to the model's
// scheduler. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/inference_request.h"
#include "core/inference_timings.h"
#include "core/model_manager.h"
#include "core/scheduler.h"
#include "core/shadow.h"
#include "core/shared_memory.h"
#include "core/shared_memory_io.h"

namespace berth {

// What a monitor keeps of one sampled request from its request to its
// response (InferenceObserver::OnSampledRequest).
struct InferenceSample {
  virtual ~InferenceSample() = default;
};

// What the access log sees of one answered request (monitoring/logs/):
// views valid only for the call.
struct RequestSummary {
  std::string_view model;      // empty when the server does not know the name
  std::string_view requested;  // the model name the request gave
  std::string_view version;    // empty when no version was resolved
  std::string_view id;         // the request's id; may be empty
  const Status& status;
  const InferenceTimings& timings;
  uint64_t bytes_in = 0;   // data bytes of the request's input tensors
  uint64_t bytes_out = 0;  // data bytes of the response's output tensors
  // A request a door refused before it reached the service (malformed, not
  // authorized, too large, rate-limited, no such route: server/refusal_log.h):
  // its HTTP status (0 at gRPC) and the client's address (may be empty).
  bool refused = false;
  int http_status = 0;
  std::string_view client = {};
};

// Told of every finished inference request (monitoring/metrics.h is one).
// Called on the thread that completes the request; must be thread-safe.
class InferenceObserver {
 public:
  virtual ~InferenceObserver() = default;
  // `model` is empty when the request named a model the server does not
  // know; `version` is empty when no version was resolved. `timings` holds
  // the request's total and, when it succeeded, its queue and compute phases
  // and its execution (core/inference_timings.h).
  virtual void OnInferenceDone(const std::string& model, const std::string& version,
                               const Status& status, const InferenceTimings& timings) = 0;
  // A shadow request finished: `comparison` is null when it failed or the
  // live request did (`status` says which), `duration` is the shadow's own.
  virtual void OnShadowDone(const std::string& model, const std::string& shadow_version,
                            const Status& status, const ShadowComparison* comparison,
                            std::chrono::nanoseconds duration) {}
  // Sampling, for monitors that read tensors (monitoring/drift/): for the
  // fraction of valid requests the version's monitoring.sample_rate draws,
  // called on the request thread before the request is handed to the
  // scheduler. Keep it cheap: copy only what is needed (the response is not
  // there yet). Null: nothing to follow.
  virtual std::shared_ptr<InferenceSample> OnSampledRequest(const Model& model,
                                                            const InferenceRequest& request) {
    return nullptr;
  }
  // The sampled request succeeded: its response, on the completing thread,
  // before the front end encodes it.
  virtual void OnSampledResponse(const Model& model, std::shared_ptr<InferenceSample> sample,
                                 const InferenceResponse& response) {}
  // Every successful answer of a version whose config records predictions
  // for feedback (monitoring.feedback, monitoring/feedback/): on the
  // completing thread, before the front end encodes it; `response.id` is
  // the request's id. Keep it cheap: copy what is needed, write elsewhere.
  virtual void OnPrediction(const Model& model, const InferenceResponse& response) {}
  // The logs (monitoring/logs/). Every request the service answers, once,
  // right after OnInferenceDone and on the same thread.
  virtual void OnRequestLogged(const RequestSummary& summary) {}
  // Every valid request, on the request thread before it is scheduled: a
  // payload log draws its own sample here and copies what it keeps. Null:
  // nothing to follow.
  virtual std::shared_ptr<InferenceSample> OnPayloadRequest(const Model& model,
                                                            const InferenceRequest& request) {
    return nullptr;
  }
  // The answer to a request OnPayloadRequest followed, success or failure,
  // on the completing thread before the front end encodes it.
  virtual void OnPayloadResponse(const Model& model, std::shared_ptr<InferenceSample> sample,
                                 const StatusOr<InferenceResponse>& response) {}
};

// Data bytes of `tensors` (BYTES: the strings' lengths).
uint64_t TensorDataBytes(const std::vector<Tensor>& tensors);

// True with probability `rate` (a thread-local generator: no lock).
bool SampleDraw(double rate);

class InferenceService {
 public:
  // `observer` may be null, and `shared_memory` (the system shared-memory
  // regions requests may name; without it such a request is refused); no
  // pointer is owned. `default_timeout` (--request-timeout): how long a
  // request may take from the moment it reaches the service, unless it asks
  // for less; zero: no limit. `follow_payloads`: whether the observer logs
  // payloads (a payload log is on); without it OnPayloadRequest is never
  // called, so that a request costs nothing for a log that is off.
  InferenceService(const ModelManager* models, InferenceObserver* observer,
                   const SharedMemoryRegistry* shared_memory = nullptr,
                   std::chrono::microseconds default_timeout = std::chrono::microseconds(0),
                   bool follow_payloads = false)
      : models_(models),
        observer_(observer),
        shared_memory_(shared_memory),
        default_timeout_(default_timeout),
        follow_payloads_(observer != nullptr && follow_payloads) {}

  // Both overloads first give the request an id if it has none: its
  // X-Request-Id (`keys`, when usable: core/request_id.h), else a new one;
  // the response carries it.
  //
  // Resolves `request->model_name` / `model_version` (ModelManager::Resolve,
  // with `keys`, the request's headers or metadata, and its inputs, for a
  // split's routing key; may be null, and is read only before Infer
  // returns), then runs the
  // request on that version. Calls `done` exactly once, possibly before
  // returning, possibly on another thread.
  void Infer(std::unique_ptr<InferenceRequest> request, InferCallback done,
             const RoutingKeys* keys = nullptr) const;

  // An input named in request->shared_memory_inputs is read from its region
  // before the request is validated, and an output whose parameters name a
  // region is written to it before `done` is called
  // (core/shared_memory_io.h); the regions stay mapped until then. Both
  // overloads.
  //
  // The doors that decode against a model's signature (rows, TF Serving,
  // the cloud routes) resolve once (`selector`, `keys`), decode, and hand
  // the handle that decoded the request here; it runs on that handle. One
  // exception: when the model splits by an input's value ("input:NAME",
  // ModelManager::SplitsByInput), the version is picked again now that the
  // input is decoded, as the v2 doors pick it, so that a key reaches the
  // same version at every door (a version whose signature differs is
  // refused by the request's validation). Same contract for `done`.
  //
  // Either way, the request's deadline becomes the earliest of the one it
  // carries (gRPC's), now + the default timeout and now + its `timeout`
  // parameter (microseconds; 0: none); a request whose deadline passes while
  // it is queued is answered DEADLINE_EXCEEDED without running.
  void Infer(ModelHandle decoded_with, std::string_view selector, const RoutingKeys* keys,
             std::unique_ptr<InferenceRequest> request, InferCallback done) const;

  const ModelManager& models() const { return *models_; }

 private:
  // Runs the request on the version resolved for it; `io` holds the
  // request's shared-memory windows if Infer took them already (else they
  // are taken here).
  void Run(ModelHandle model, std::unique_ptr<InferenceRequest> request, InferCallback done,
           std::shared_ptr<const SharedMemoryIo> io = nullptr) const;
  // Answers a request that no version will run, telling the observer.
  void Refuse(const InferenceRequest& request, const Status& status,
              const InferCallback& done) const;

  // Runs a copy of `request` on the model's shadow when it has one and the
  // draw says so, and arranges for the two answers to be compared; returns
  // `done` wrapped to take part in the comparison. The shadow runs after the
  // live request was handed over, so it never delays the live answer.
  InferCallback MaybeShadow(const ModelHandle& live, const InferenceRequest& request,
                            InferCallback done, std::function<void()>* start_shadow) const;

  const ModelManager* models_;
  InferenceObserver* observer_;
  const SharedMemoryRegistry* shared_memory_;
  const std::chrono::microseconds default_timeout_;
  const bool follow_payloads_;  // observer_ is set and a payload log is on
};

}  // namespace berth
