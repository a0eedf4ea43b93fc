#include "core/inference_service.h"

#include "core/request_validator.h"

namespace berth {

void InferenceService::Infer(std::unique_ptr<InferenceRequest> request,
                             InferCallback done) const {
  auto model = models_->Resolve(request->model_name, request->model_version, request->routing_key);
  if (!model.ok()) {
    if (observer_ != nullptr) {
      // A known model with an unknown or unready version counts under the
      // model's name; an unknown model name does not create a series.
      const bool known = model.status().code() != Status::Code::kNotFound ||
                         models_->Find(request->model_name).has_value();
      observer_->OnInferenceDone(known ? request->model_name : std::string(), std::string(),
                                 model.status(), std::chrono::nanoseconds(0));
    }
    done(model.status());
    return;
  }
  Infer(std::move(model).value(), std::move(request), std::move(done));
}

void InferenceService::Infer(ModelHandle m, std::unique_ptr<InferenceRequest> request,
                             InferCallback done) const {
  if (observer_ != nullptr) {
    done = [observer = observer_, name = m->name, version = std::to_string(m->version),
            start = std::chrono::steady_clock::now(),
            done = std::move(done)](StatusOr<InferenceResponse> response) {
      observer->OnInferenceDone(name, version, response.status(),
                                std::chrono::steady_clock::now() - start);
      done(std::move(response));
    };
  }
  Status valid = ValidateRequest(*m, *request);
  if (!valid.ok()) {
    done(valid);
    return;
  }
  Scheduler* scheduler = m->scheduler.get();
  scheduler->Enqueue(std::move(m), std::move(request), std::move(done));
}

}  // namespace berth
