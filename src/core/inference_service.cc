#include "core/inference_service.h"

#include "core/request_validator.h"

namespace berth {

void InferenceService::Infer(std::unique_ptr<InferenceRequest> request,
                             InferCallback done) const {
  auto model = models_->Get(request->model_name, request->model_version);
  if (!model.ok()) {
    done(model.status());
    return;
  }
  std::shared_ptr<const Model> m = std::move(model).value();
  Status valid = ValidateRequest(*m, *request);
  if (!valid.ok()) {
    done(valid);
    return;
  }
  Scheduler* scheduler = m->scheduler.get();
  scheduler->Enqueue(std::move(m), std::move(request), std::move(done));
}

}  // namespace berth
