#include "core/scheduler.h"

#include <atomic>
#include <string>
#include <vector>

#include "core/model.h"

namespace berth {
namespace {

class DirectScheduler final : public Scheduler {
 public:
  void Enqueue(std::shared_ptr<const Model> model, std::unique_ptr<InferenceRequest> request,
               InferCallback done) override {
    if (draining_.load(std::memory_order_acquire)) return done(ShuttingDown());
    // Nothing queues here, but a request may reach its scheduler late.
    if (std::chrono::steady_clock::now() >= request->deadline) {
      return done(DeadlineExceeded(*model));
    }
    done(ExecuteRequest(*model, *request));
  }

  // Holds nothing: a request runs on its caller's thread, which the front end
  // waits for.
  void Drain() override { draining_.store(true, std::memory_order_release); }

 private:
  std::atomic<bool> draining_{false};
};

}  // namespace

Status ShuttingDown() { return Status::Unavailable("the server is shutting down"); }

Status DeadlineExceeded(const Model& model) {
  return Status::DeadlineExceeded("the request's deadline passed before model '" + model.name +
                                  "' could run it");
}

std::unique_ptr<Scheduler> CreateDirectScheduler() { return std::make_unique<DirectScheduler>(); }

StatusOr<InferenceResponse> ExecuteRequest(const Model& model, const InferenceRequest& request,
                                           std::chrono::steady_clock::time_point start) {
  std::vector<std::string> names;
  if (request.outputs.empty()) {
    for (const auto& o : model.signature.outputs) names.push_back(o.name);
  } else {
    for (const auto& o : request.outputs) names.push_back(o.name);
  }
  InferenceResponse response;
  response.model_name = model.name;
  response.model_version = std::to_string(model.version);
  response.id = request.id;
  BackendTimings backend;
  RETURN_IF_ERROR(model.backend->Execute(request.inputs, names, &response.outputs, &backend));
  const auto end = std::chrono::steady_clock::now();
  // A backend that did not split its call: all of it is the engine's.
  using TimePoint = std::chrono::steady_clock::time_point;
  const TimePoint inputs_ready = backend.inputs_ready == TimePoint{} ? start : backend.inputs_ready;
  const TimePoint engine_done = backend.engine_done == TimePoint{} ? end : backend.engine_done;
  InferenceTimings& t = response.timings;
  t.compute_input = inputs_ready - start;
  t.compute_infer = engine_done - inputs_ready;
  t.compute_output = end - engine_done;
  const bool batched = model.config.max_batch_size > 0 && !request.inputs.empty() &&
                       !request.inputs[0].shape().empty();
  t.batch_size = batched ? request.inputs[0].shape()[0] : 1;
  t.counts_execution = true;
  return response;
}

}  // namespace berth
