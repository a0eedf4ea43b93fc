#include "core/dynamic_batcher.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "core/model.h"
#include "core/thread_annotations.h"

namespace berth {
namespace {

using Clock = std::chrono::steady_clock;

struct Pending {
  std::unique_ptr<InferenceRequest> request;
  InferCallback done;
  Clock::time_point enqueued;
  int64_t batch = 0;  // the request's first dimension
};

int64_t BatchOf(const InferenceRequest& r) {
  return r.inputs.empty() || r.inputs[0].shape().empty() ? 0 : r.inputs[0].shape()[0];
}

const Tensor* FindInput(const InferenceRequest& r, const std::string& name) {
  for (const auto& t : r.inputs) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

// Whether `b` can run in one backend call with `a`.
bool Compatible(const InferenceRequest& a, const InferenceRequest& b) {
  if (a.inputs.size() != b.inputs.size() || a.outputs.size() != b.outputs.size()) return false;
  for (size_t i = 0; i < a.outputs.size(); ++i) {
    if (a.outputs[i].name != b.outputs[i].name) return false;
  }
  for (const Tensor& x : a.inputs) {
    const Tensor* y = FindInput(b, x.name());
    if (y == nullptr || y->datatype() != x.datatype() || y->shape().size() != x.shape().size() ||
        !std::equal(x.shape().begin() + 1, x.shape().end(), y->shape().begin() + 1)) {
      return false;
    }
  }
  return true;
}

// Concatenates the batch's inputs along the first dimension.
std::vector<Tensor> Concatenate(const std::vector<Pending>& batch, int64_t total) {
  std::vector<Tensor> merged;
  const InferenceRequest& first = *batch.front().request;
  for (const Tensor& x : first.inputs) {
    std::vector<int64_t> shape = x.shape();
    shape[0] = total;
    Tensor t(x.name(), x.datatype(), std::move(shape));
    for (const Pending& p : batch) {
      const Tensor* part = FindInput(*p.request, x.name());
      if (x.datatype() == DataType::kBytes) {
        t.strings().insert(t.strings().end(), part->strings().begin(), part->strings().end());
      } else {
        t.bytes().insert(t.bytes().end(), part->bytes().begin(), part->bytes().end());
      }
    }
    merged.push_back(std::move(t));
  }
  return merged;
}

// Rows [begin, begin + rows) of `t`.
Tensor SliceRows(const Tensor& t, int64_t begin, int64_t rows) {
  std::vector<int64_t> shape = t.shape();
  const int64_t total = shape[0];
  shape[0] = rows;
  Tensor out(t.name(), t.datatype(), std::move(shape));
  if (t.datatype() == DataType::kBytes) {
    const size_t per_row = total == 0 ? 0 : t.strings().size() / static_cast<size_t>(total);
    auto from = t.strings().begin() + static_cast<ptrdiff_t>(begin * per_row);
    out.strings().assign(from, from + static_cast<ptrdiff_t>(rows * per_row));
  } else {
    const size_t per_row = total == 0 ? 0 : t.bytes().size() / static_cast<size_t>(total);
    auto from = t.bytes().begin() + static_cast<ptrdiff_t>(begin * per_row);
    out.bytes().assign(from, from + static_cast<ptrdiff_t>(rows * per_row));
  }
  return out;
}

class DynamicBatcher final : public Scheduler {
 public:
  explicit DynamicBatcher(const Model* model)
      : model_(model), options_(model->config.dynamic_batching.value_or(DynamicBatchingConfig{})) {
    const int instances = std::max(1, model->config.instance_count);
    for (int i = 0; i < instances; ++i) workers_.emplace_back([this] { Work(); });
  }

  ~DynamicBatcher() override {
    std::thread reaper;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      reaper = std::move(reaper_);
    }
    cv_.notify_all();
    reaper_cv_.notify_all();
    for (auto& w : workers_) w.join();
    if (reaper.joinable()) reaper.join();
  }

  // The queue refers to model_, which owns this scheduler, so the shared_ptr
  // need not be kept.
  void Enqueue(std::shared_ptr<const Model>, std::unique_ptr<InferenceRequest> request,
               InferCallback done) override {
    const int64_t batch = BatchOf(*request);
    Status refused;
    bool has_deadline = false;
    {
      std::lock_guard lock(mu_);
      if (draining_) {
        refused = ShuttingDown();
      } else if (stopping_) {
        refused = Status::Unavailable("model '" + model_->name + "' is unloading");
      } else if (static_cast<int64_t>(queue_.size()) >= options_.max_queue_size) {
        model_->queue_full.fetch_add(1, std::memory_order_relaxed);
        refused = Status::Unavailable("the queue of model '" + model_->name + "' is full (" +
                                      std::to_string(options_.max_queue_size) +
                                      " requests); retry later");
      } else {
        has_deadline = request->deadline != Clock::time_point::max();
        // The reaper is started by the first request that can expire, so a
        // server that sets no deadlines runs no reaper threads.
        if (has_deadline && !reaper_.joinable()) reaper_ = std::thread([this] { Reap(); });
        queue_.push_back(Pending{std::move(request), std::move(done), Clock::now(), batch});
      }
    }
    if (!refused.ok()) return done(refused);
    cv_.notify_one();
    if (has_deadline) reaper_cv_.notify_one();
  }

  // Wakes every worker: with draining_ set, none waits out a delay, so the
  // queue empties as fast as the instances run batches.
  void Drain() override {
    {
      std::lock_guard lock(mu_);
      draining_ = true;
    }
    cv_.notify_all();
  }

 private:
  bool Preferred(int64_t size) const {
    const auto& p = options_.preferred_batch_sizes;
    return std::find(p.begin(), p.end(), size) != p.end();
  }

  // Takes the oldest request and every compatible one that fits; returns the
  // total batch size.
  int64_t Gather(std::vector<Pending>* batch) EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int64_t max = model_->config.max_batch_size;
    batch->push_back(std::move(queue_.front()));
    queue_.pop_front();
    int64_t total = batch->front().batch;
    for (auto it = queue_.begin(); it != queue_.end() && total < max;) {
      if (total + it->batch <= max && Compatible(*batch->front().request, *it->request)) {
        total += it->batch;
        batch->push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    return total;
  }

  void Work() {
    const auto delay = std::chrono::microseconds(options_.max_queue_delay_microseconds);
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything accepted is done
      // Wait for more work until the oldest request's delay runs out, unless
      // a full or preferred batch is already there.
      const Clock::time_point deadline = queue_.front().enqueued + delay;
      while (!stopping_ && !draining_ && Clock::now() < deadline) {
        int64_t queued = 0;
        for (const auto& p : queue_) queued += p.batch;
        if (queued >= model_->config.max_batch_size || Preferred(queued)) break;
        cv_.wait_until(lock, deadline);
        if (queue_.empty()) break;
      }
      std::vector<Pending> expired = TakeExpired(Clock::now());
      std::vector<Pending> batch;
      const int64_t total = queue_.empty() ? 0 : Gather(&batch);
      const bool more = !queue_.empty();
      lock.unlock();
      if (more) cv_.notify_one();  // another instance may take what is left
      for (Pending& p : expired) p.done(DeadlineExceeded(*model_));
      if (!batch.empty()) Run(std::move(batch), total);
      lock.lock();
    }
  }

  // Removes from the queue every request whose deadline is not after `now`.
  std::vector<Pending> TakeExpired(Clock::time_point now) EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<Pending> expired;
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (it->request->deadline <= now) {
        expired.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    return expired;
  }

  // The reaper's thread: answers each queued request DEADLINE_EXCEEDED as
  // its deadline passes, while the workers may all be busy running batches
  // (a worker also drops expired requests before it gathers a batch). Ends
  // when the batcher is destroyed; the workers finish what is left.
  void Reap() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      Clock::time_point next = Clock::time_point::max();
      for (const auto& p : queue_) next = std::min(next, p.request->deadline);
      if (next == Clock::time_point::max()) {
        reaper_cv_.wait(lock);
      } else {
        reaper_cv_.wait_until(lock, next);
      }
      if (stopping_) return;
      std::vector<Pending> expired = TakeExpired(Clock::now());
      if (expired.empty()) continue;
      lock.unlock();
      for (Pending& p : expired) p.done(DeadlineExceeded(*model_));
      lock.lock();
    }
  }

  // The batch's execution starts with assembling it: concatenation counts
  // in compute_input and the split in compute_output, as the backend's own
  // copies do; each request's queue time ends here.
  void Run(std::vector<Pending> batch, int64_t total) {
    const Clock::time_point start = Clock::now();
    if (batch.size() == 1) {
      Pending& p = batch.front();
      StatusOr<InferenceResponse> result = ExecuteRequest(*model_, *p.request, start);
      if (result.ok()) result->timings.queue = start - p.enqueued;
      p.done(std::move(result));
      return;
    }
    InferenceRequest merged;
    merged.model_name = model_->name;
    merged.inputs = Concatenate(batch, total);
    merged.outputs = batch.front().request->outputs;
    StatusOr<InferenceResponse> result = ExecuteRequest(*model_, merged, start);
    if (!result.ok()) {
      for (Pending& p : batch) p.done(result.status());
      return;
    }
    for (const Tensor& out : result->outputs) {
      if (out.shape().empty() || out.shape()[0] != total) {
        const Status s = Status::Internal("output '" + out.name() + "' of model '" +
                                          model_->name + "' has no batch dimension (shape " +
                                          ShapeToString(out.shape()) +
                                          "); disable dynamic_batching for this model");
        for (Pending& p : batch) p.done(s);
        return;
      }
    }
    std::vector<InferenceResponse> responses(batch.size());
    int64_t row = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      InferenceResponse& response = responses[i];
      response.model_name = result->model_name;
      response.model_version = result->model_version;
      response.id = batch[i].request->id;
      for (const Tensor& out : result->outputs) {
        response.outputs.push_back(SliceRows(out, row, batch[i].batch));
      }
      row += batch[i].batch;
    }
    InferenceTimings timings = result->timings;
    timings.compute_output =
        Clock::now() - start - timings.compute_input - timings.compute_infer;
    for (size_t i = 0; i < batch.size(); ++i) {
      responses[i].timings = timings;
      responses[i].timings.queue = start - batch[i].enqueued;
      responses[i].timings.counts_execution = i == 0;
      batch[i].done(std::move(responses[i]));
    }
  }

  const Model* const model_;
  const DynamicBatchingConfig options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable reaper_cv_;  // a request with a deadline was queued, or stopping
  std::deque<Pending> queue_ GUARDED_BY(mu_);
  std::thread reaper_ GUARDED_BY(mu_);  // started by the first request with a deadline
  bool stopping_ GUARDED_BY(mu_) = false;  // being destroyed
  bool draining_ GUARDED_BY(mu_) = false;  // Drain() was called
  std::vector<std::thread> workers_;
};

}  // namespace

std::unique_ptr<Scheduler> CreateDynamicBatcher(const Model* model) {
  return std::make_unique<DynamicBatcher>(model);
}

}  // namespace berth
