#include "core/inference_service.h"

#include "core/request_validator.h"

#include <mutex>
#include <optional>

namespace berth {

void InferenceService::Infer(std::unique_ptr<InferenceRequest> request, InferCallback done,
                             const RoutingKeys* keys) const {
  const RequestRoutingKeys with_inputs(*request, keys);
  auto model = models_->Resolve(request->model_name, request->model_version, &with_inputs);
  if (!model.ok()) {
    if (observer_ != nullptr) {
      // A known model with an unknown or unready version counts under the
      // model's name; an unknown model name does not create a series.
      const bool known = model.status().code() != Status::Code::kNotFound ||
                         models_->Find(request->model_name).has_value();
      InferenceTimings timings;
      timings.finished = std::chrono::steady_clock::now();
      observer_->OnInferenceDone(known ? request->model_name : std::string(), std::string(),
                                 model.status(), timings);
    }
    done(model.status());
    return;
  }
  Run(std::move(model).value(), std::move(request), std::move(done));
}

void InferenceService::Infer(ModelHandle decoded_with, std::string_view selector,
                             const RoutingKeys* keys, std::unique_ptr<InferenceRequest> request,
                             InferCallback done) const {
  if (models_->SplitsByInput()) {
    const RequestRoutingKeys with_inputs(*request, keys);
    // Gone meanwhile (a hot swap): the handle that decoded it still runs it.
    if (auto again = models_->Resolve(decoded_with->name, selector, &with_inputs); again.ok()) {
      decoded_with = std::move(again).value();
    }
  }
  Run(std::move(decoded_with), std::move(request), std::move(done));
}

namespace {

// The two answers of a shadowed request, compared once both are in.
struct ShadowPair {
  std::mutex mu;
  bool live_done = false;
  bool shadow_done = false;
  std::optional<InferenceResponse> live;    // set iff the live request succeeded
  StatusOr<InferenceResponse> shadow = Status::Internal("not run");
  std::chrono::nanoseconds shadow_duration{0};
};

}  // namespace

InferCallback InferenceService::MaybeShadow(const ModelHandle& live,
                                            const InferenceRequest& request, InferCallback done,
                                            std::function<void()>* start_shadow) const {
  if (observer_ == nullptr) return done;
  std::optional<ModelManager::Shadow> shadow = models_->FindShadow(live->name);
  if (!shadow || shadow->model == live || !ShadowDraw(shadow->percent)) return done;
  auto pair = std::make_shared<ShadowPair>();
  auto finish = [observer = observer_, name = live->name,
                 version = std::to_string(shadow->model->version)](ShadowPair& p) {
    if (!p.shadow.ok()) {
      observer->OnShadowDone(name, version, p.shadow.status(), nullptr, p.shadow_duration);
    } else if (!p.live) {
      observer->OnShadowDone(name, version, Status::Unavailable("the live request failed"),
                             nullptr, p.shadow_duration);
    } else {
      const ShadowComparison c = CompareOutputs(*p.live, *p.shadow);
      observer->OnShadowDone(name, version, Status::Ok(), &c, p.shadow_duration);
    }
  };
  auto copy = std::make_shared<std::unique_ptr<InferenceRequest>>(
      std::make_unique<InferenceRequest>(request));
  *start_shadow = [pair, finish, copy, model = shadow->model] {
    const auto start = std::chrono::steady_clock::now();
    auto shadow_done = [pair, finish, start](StatusOr<InferenceResponse> response) {
      std::unique_lock lock(pair->mu);
      pair->shadow = std::move(response);
      pair->shadow_duration = std::chrono::steady_clock::now() - start;
      pair->shadow_done = true;
      if (pair->live_done) finish(*pair);
    };
    if (Status valid = ValidateRequest(*model, **copy); !valid.ok()) return shadow_done(valid);
    model->scheduler->Enqueue(model, std::move(*copy), std::move(shadow_done));
  };
  return [pair, finish, done = std::move(done)](StatusOr<InferenceResponse> response) {
    {
      std::unique_lock lock(pair->mu);
      if (response.ok()) pair->live = *response;
      pair->live_done = true;
      if (pair->shadow_done) finish(*pair);
    }
    done(std::move(response));
  };
}

void InferenceService::Run(ModelHandle m, std::unique_ptr<InferenceRequest> request,
                           InferCallback done) const {
  if (observer_ != nullptr) {
    // `model` is a plain pointer: the scheduler answers every request before
    // it, and so the version owning it, is destroyed (Scheduler::Enqueue),
    // while a handle here could make a batcher's worker destroy its own model.
    m->in_flight.fetch_add(1, std::memory_order_relaxed);
    done = [observer = observer_, model = m.get(), version = std::to_string(m->version),
            start = std::chrono::steady_clock::now(),
            done = std::move(done)](StatusOr<InferenceResponse> response) {
      InferenceTimings empty;
      InferenceTimings& timings = response.ok() ? response->timings : empty;
      timings.finished = std::chrono::steady_clock::now();
      timings.total = timings.finished - start;
      observer->OnInferenceDone(model->name, version, response.status(), timings);
      model->in_flight.fetch_sub(1, std::memory_order_relaxed);
      done(std::move(response));
    };
  }
  Status valid = ValidateRequest(*m, *request);
  if (!valid.ok()) {
    done(valid);
    return;
  }
  std::function<void()> start_shadow;
  done = MaybeShadow(m, *request, std::move(done), &start_shadow);
  Scheduler* scheduler = m->scheduler.get();
  scheduler->Enqueue(std::move(m), std::move(request), std::move(done));
  if (start_shadow) start_shadow();
}

}  // namespace berth
