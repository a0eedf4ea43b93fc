#include "core/inference_service.h"

#include "core/request_id.h"
#include "core/request_validator.h"
#include "core/shared_memory_io.h"

#include <algorithm>
#include <mutex>
#include <optional>
#include <random>
#include <variant>

namespace berth {

bool SampleDraw(double rate) {
  if (rate <= 0) return false;
  if (rate >= 1) return true;
  thread_local std::minstd_rand random{std::random_device{}()};
  return static_cast<double>(random() - std::minstd_rand::min()) <
         rate * static_cast<double>(std::minstd_rand::max() - std::minstd_rand::min());
}

namespace {

void AssignRequestId(InferenceRequest* request, const RoutingKeys* keys) {
  if (!request->id.empty()) return;
  if (keys != nullptr) {
    const std::string_view header = keys->Find(kRequestIdHeader);
    if (IsUsableRequestId(header)) {
      request->id = std::string(header);
      return;
    }
  }
  request->id = NewRequestId();
}

}  // namespace

uint64_t TensorDataBytes(const std::vector<Tensor>& tensors) {
  uint64_t bytes = 0;
  for (const Tensor& t : tensors) {
    bytes += t.bytes().size();
    for (const std::string& s : t.strings()) bytes += s.size();
  }
  return bytes;
}

void InferenceService::Refuse(const InferenceRequest& request, const Status& status,
                              const InferCallback& done) const {
  if (observer_ != nullptr) {
    // A known model with an unknown or unready version counts under the
    // model's name; an unknown model name does not create a series.
    const bool known = status.code() != Status::Code::kNotFound ||
                       models_->Find(request.model_name).has_value();
    InferenceTimings timings;
    timings.finished = std::chrono::steady_clock::now();
    timings.protocol = request.protocol;
    const std::string& model = known ? request.model_name : std::string();
    observer_->OnInferenceDone(model, std::string(), status, timings);
    observer_->OnRequestLogged({.model = model,
                                .requested = request.model_name,
                                .version = {},
                                .id = request.id,
                                .status = status,
                                .timings = timings,
                                .bytes_in = TensorDataBytes(request.inputs),
                                .bytes_out = 0});
  }
  done(status);
}

void InferenceService::Infer(std::unique_ptr<InferenceRequest> request, InferCallback done,
                             const RoutingKeys* keys) const {
  AssignRequestId(request.get(), keys);
  // The inputs in shared memory are read before the version is picked, so
  // that a split keyed by such an input keys on its data.
  std::shared_ptr<const SharedMemoryIo> io;
  if (UsesSharedMemory(*request)) {
    auto prepared = SharedMemoryIo::Prepare(shared_memory_, request.get());
    if (!prepared.ok()) return Refuse(*request, prepared.status(), done);
    io = std::move(prepared).value();
  }
  const RequestRoutingKeys with_inputs(*request, keys);
  auto model = models_->Resolve(request->model_name, request->model_version, &with_inputs);
  if (!model.ok()) return Refuse(*request, model.status(), done);
  Run(std::move(model).value(), std::move(request), std::move(done), std::move(io));
}

void InferenceService::Infer(ModelHandle decoded_with, std::string_view selector,
                             const RoutingKeys* keys, std::unique_ptr<InferenceRequest> request,
                             InferCallback done) const {
  AssignRequestId(request.get(), keys);
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

// Lowers `request->deadline` to now + `timeout` when that is earlier.
void LimitDeadline(InferenceRequest* request, std::chrono::steady_clock::time_point now,
                   std::chrono::microseconds timeout) {
  if (timeout.count() <= 0) return;
  // A timeout too large to add to `now` is no limit at all.
  if (timeout >= std::chrono::duration_cast<std::chrono::microseconds>(
                     std::chrono::steady_clock::time_point::max() - now)) {
    return;
  }
  request->deadline = std::min(request->deadline, now + timeout);
}

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
                           InferCallback done, std::shared_ptr<const SharedMemoryIo> io) const {
  if (observer_ != nullptr) {
    // `model` is a plain pointer: the scheduler answers every request before
    // it, and so the version owning it, is destroyed (Scheduler::Enqueue),
    // while a handle here could make a batcher's worker destroy its own model.
    m->in_flight.fetch_add(1, std::memory_order_relaxed);
    done = [observer = observer_, model = m.get(), version = std::to_string(m->version),
            start = std::chrono::steady_clock::now(), protocol = request->protocol,
            id = request->id, bytes_in = TensorDataBytes(request->inputs),
            done = std::move(done)](StatusOr<InferenceResponse> response) {
      InferenceTimings empty;
      InferenceTimings& timings = response.ok() ? response->timings : empty;
      timings.protocol = protocol;
      timings.finished = std::chrono::steady_clock::now();
      timings.total = timings.finished - start;
      observer->OnInferenceDone(model->name, version, response.status(), timings);
      observer->OnRequestLogged(
          {.model = model->name,
           .requested = model->name,
           .version = version,
           .id = response.ok() && !response->id.empty() ? std::string_view(response->id)
                                                        : std::string_view(id),
           .status = response.status(),
           .timings = timings,
           .bytes_in = bytes_in,
           .bytes_out = response.ok() ? TensorDataBytes(response->outputs) : 0});
      model->in_flight.fetch_sub(1, std::memory_order_relaxed);
      done(std::move(response));
    };
  }
  // Outside the observer's wrapper: an output that does not fit its region
  // fails the request, and is counted as a failure.
  if (io == nullptr && UsesSharedMemory(*request)) {
    auto prepared = SharedMemoryIo::Prepare(shared_memory_, request.get());
    if (!prepared.ok()) {
      done(prepared.status());
      return;
    }
    io = std::move(prepared).value();
  }
  if (io != nullptr) {
    done = [io = std::move(io), done = std::move(done)](StatusOr<InferenceResponse> response) {
      if (response.ok()) {
        if (Status s = io->WriteOutputs(&*response); !s.ok()) response = std::move(s);
      }
      done(std::move(response));
    };
  }
  Status valid = ValidateRequest(*m, *request);
  if (!valid.ok()) {
    done(valid);
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  LimitDeadline(request.get(), now, default_timeout_);
  // Its type was checked as it was decoded (CheckKnownParameter).
  if (auto it = request->parameters.find("timeout");
      it != request->parameters.end() && std::holds_alternative<int64_t>(it->second)) {
    LimitDeadline(request.get(), now, std::chrono::microseconds(std::get<int64_t>(it->second)));
  }
  if (observer_ != nullptr && SampleDraw(m->config.monitoring.sample_rate)) {
    if (auto sample = observer_->OnSampledRequest(*m, *request)) {
      // A plain pointer to the model, as above.
      done = [observer = observer_, model = m.get(), sample = std::move(sample),
              done = std::move(done)](StatusOr<InferenceResponse> response) mutable {
        if (response.ok()) observer->OnSampledResponse(*model, std::move(sample), *response);
        done(std::move(response));
      };
    }
  }
  if (observer_ != nullptr && m->config.monitoring.feedback.enabled) {
    // A plain pointer to the model, as above.
    done = [observer = observer_, model = m.get(),
            done = std::move(done)](StatusOr<InferenceResponse> response) {
      if (response.ok()) observer->OnPrediction(*model, *response);
      done(std::move(response));
    };
  }
  if (follow_payloads_) {
    if (auto sample = observer_->OnPayloadRequest(*m, *request)) {
      // A plain pointer to the model, as above.
      done = [observer = observer_, model = m.get(), sample = std::move(sample),
              done = std::move(done)](StatusOr<InferenceResponse> response) mutable {
        observer->OnPayloadResponse(*model, std::move(sample), response);
        done(std::move(response));
      };
    }
  }
  std::function<void()> start_shadow;
  done = MaybeShadow(m, *request, std::move(done), &start_shadow);
  Scheduler* scheduler = m->scheduler.get();
  scheduler->Enqueue(std::move(m), std::move(request), std::move(done));
  if (start_shadow) start_shadow();
}

}  // namespace berth
