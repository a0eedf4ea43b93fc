#include "core/dynamic_batcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/model.h"

namespace berth {
namespace {

// y = 2 * x for x: FP32 [-1, 2]; records the batch size of every call and can
// hold its first call until released, so that a test can build up a queue.
class DoublingBackend final : public Backend {
 public:
  DoublingBackend() {
    signature_.inputs = {{"x", DataType::kFp32, {-1, 2}}};
    signature_.outputs = {{"y", DataType::kFp32, {-1, 2}}};
  }
  const ModelSignature& signature() const override { return signature_; }

  Status Execute(std::span<const Tensor> inputs, std::span<const std::string>,
                 std::vector<Tensor>* outputs, BackendTimings*) override {
    {
      std::unique_lock lock(mu_);
      batch_sizes_.push_back(inputs[0].shape()[0]);
      entered_.notify_all();
      released_cv_.wait(lock, [this] { return released_; });
    }
    Tensor y("y", DataType::kFp32, inputs[0].shape());
    y.bytes() = inputs[0].bytes();
    float* p = y.data<float>();
    for (int64_t i = 0; i < y.element_count(); ++i) p[i] *= 2;
    outputs->push_back(std::move(y));
    return Status::Ok();
  }

  void WaitForCalls(size_t n) {
    std::unique_lock lock(mu_);
    entered_.wait(lock, [&] { return batch_sizes_.size() >= n; });
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    released_cv_.notify_all();
  }
  std::vector<int64_t> batch_sizes() {
    std::lock_guard lock(mu_);
    return batch_sizes_;
  }

 private:
  ModelSignature signature_;
  std::mutex mu_;
  std::condition_variable entered_, released_cv_;
  bool released_ = false;
  std::vector<int64_t> batch_sizes_;
};

std::unique_ptr<Model> MakeModel(DoublingBackend** backend, int64_t max_batch_size,
                                 int64_t delay_us, std::vector<int64_t> preferred = {},
                                 int64_t max_queue_size = 100) {
  auto m = std::make_unique<Model>();
  m->name = "double";
  m->version = 1;
  m->config.max_batch_size = max_batch_size;
  m->config.dynamic_batching = DynamicBatchingConfig{delay_us, std::move(preferred), max_queue_size};
  auto b = std::make_unique<DoublingBackend>();
  *backend = b.get();
  m->signature = b->signature();
  m->backend = std::move(b);
  m->scheduler = CreateDynamicBatcher(m.get());
  return m;
}

std::unique_ptr<InferenceRequest> Request(std::vector<float> rows, const std::string& id) {
  auto r = std::make_unique<InferenceRequest>();
  r->id = id;
  Tensor x("x", DataType::kFp32, {static_cast<int64_t>(rows.size() / 2), 2});
  x.bytes().resize(rows.size() * sizeof(float));
  std::memcpy(x.bytes().data(), rows.data(), x.bytes().size());
  r->inputs.push_back(std::move(x));
  return r;
}

std::vector<float> Values(const Tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.element_count());
}

TEST(DynamicBatcherTest, QueuedRequestsRunAsOneBatchAndSplitBackByRows) {
  DoublingBackend* backend = nullptr;
  // A preferred size of 6 lets the second batch run without waiting out the delay.
  auto model = MakeModel(&backend, 8, 1'000'000, {6});
  std::vector<std::promise<StatusOr<InferenceResponse>>> results(4);
  auto enqueue = [&](int i, std::vector<float> rows) {
    model->scheduler->Enqueue(nullptr, Request(std::move(rows), "r" + std::to_string(i)),
                              [&results, i](StatusOr<InferenceResponse> r) {
                                results[i].set_value(std::move(r));
                              });
  };
  // The first request fills a batch of max size 8 on its own...
  enqueue(0, std::vector<float>(16, 1.0f));
  backend->WaitForCalls(1);
  // ...while it is held, three more requests (1 + 2 + 3 rows) queue up.
  enqueue(1, {1, 2});
  enqueue(2, {3, 4, 5, 6});
  enqueue(3, {7, 8, 9, 10, 11, 12});
  backend->Release();

  std::vector<StatusOr<InferenceResponse>> done;
  for (auto& p : results) done.push_back(p.get_future().get());
  EXPECT_EQ(backend->batch_sizes(), (std::vector<int64_t>{8, 6}));
  ASSERT_TRUE(done[1].ok()) << done[1].status().ToString();
  EXPECT_EQ(done[1]->id, "r1");
  EXPECT_EQ(done[1]->outputs[0].shape(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(Values(done[1]->outputs[0]), (std::vector<float>{2, 4}));
  EXPECT_EQ(done[2]->outputs[0].shape(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(Values(done[2]->outputs[0]), (std::vector<float>{6, 8, 10, 12}));
  EXPECT_EQ(Values(done[3]->outputs[0]), (std::vector<float>{14, 16, 18, 20, 22, 24}));
  EXPECT_EQ(done[3]->model_name, "double");
  EXPECT_EQ(done[3]->model_version, "1");
  // Each request carries its execution's size; each execution counts once,
  // on the first request of its batch.
  EXPECT_EQ(done[0]->timings.batch_size, 8);
  EXPECT_TRUE(done[0]->timings.counts_execution);
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(done[i]->timings.batch_size, 6) << i;
    EXPECT_EQ(done[i]->timings.counts_execution, i == 1) << i;
  }
}

TEST(DynamicBatcherTest, BatchesNeverExceedMaxBatchSize) {
  DoublingBackend* backend = nullptr;
  auto model = MakeModel(&backend, 4, 0);
  std::vector<std::promise<StatusOr<InferenceResponse>>> results(4);
  for (int i = 0; i < 4; ++i) {
    model->scheduler->Enqueue(nullptr, Request({1, 1, 2, 2, 3, 3}, std::to_string(i)),
                              [&results, i](StatusOr<InferenceResponse> r) {
                                results[i].set_value(std::move(r));
                              });
  }
  backend->Release();
  for (auto& p : results) ASSERT_TRUE(p.get_future().get().ok());
  // Three rows each: no two fit together under a maximum of four.
  EXPECT_EQ(backend->batch_sizes(), (std::vector<int64_t>{3, 3, 3, 3}));
}

TEST(DynamicBatcherTest, DestructionFinishesAcceptedRequests) {
  DoublingBackend* backend = nullptr;
  auto model = MakeModel(&backend, 8, 1'000'000);
  int finished = 0;
  std::mutex mu;
  for (int i = 0; i < 3; ++i) {
    model->scheduler->Enqueue(nullptr, Request({1, 2}, std::to_string(i)),
                              [&](StatusOr<InferenceResponse> r) {
                                EXPECT_TRUE(r.ok());
                                std::lock_guard lock(mu);
                                ++finished;
                              });
  }
  backend->Release();
  model->scheduler.reset();  // must not wait out the one-second delay
  EXPECT_EQ(finished, 3);
}

TEST(DynamicBatcherTest, FullQueueIsRefusedAsUnavailable) {
  DoublingBackend* backend = nullptr;
  auto model = MakeModel(&backend, 1, 0, {}, /*max_queue_size=*/1);
  std::vector<std::promise<StatusOr<InferenceResponse>>> results(3);
  auto enqueue = [&](int i) {
    model->scheduler->Enqueue(nullptr, Request({1, 2}, std::to_string(i)),
                              [&results, i](StatusOr<InferenceResponse> r) {
                                results[i].set_value(std::move(r));
                              });
  };
  enqueue(0);
  backend->WaitForCalls(1);  // the worker holds request 0; the queue is empty
  enqueue(1);                // fills the queue
  enqueue(2);                // refused at once
  auto refused = results[2].get_future().get();
  EXPECT_EQ(refused.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(refused.status().message().find("full"), std::string::npos);
  EXPECT_EQ(model->queue_full.load(), 1u);
  backend->Release();
  EXPECT_TRUE(results[0].get_future().get().ok());
  EXPECT_TRUE(results[1].get_future().get().ok());
}

TEST(DynamicBatcherDeadlineTest, QueuedRequestExpiresWhileTheWorkerIsBusyAndNeverRuns) {
  DoublingBackend* backend = nullptr;
  auto model = MakeModel(&backend, 1, 0);
  std::vector<std::promise<StatusOr<InferenceResponse>>> results(3);
  auto enqueue = [&](int i, std::chrono::steady_clock::time_point deadline) {
    auto r = Request({1, 2}, std::to_string(i));
    r->deadline = deadline;
    model->scheduler->Enqueue(nullptr, std::move(r),
                              [&results, i](StatusOr<InferenceResponse> r) {
                                results[i].set_value(std::move(r));
                              });
  };
  const auto never = std::chrono::steady_clock::time_point::max();
  enqueue(0, never);
  backend->WaitForCalls(1);  // the only worker holds request 0
  enqueue(1, std::chrono::steady_clock::now() + std::chrono::milliseconds(20));
  enqueue(2, never);
  // Answered while the worker is still held: the reaper took it out.
  auto expired = results[1].get_future().get();
  EXPECT_EQ(expired.status().code(), Status::Code::kDeadlineExceeded);
  EXPECT_NE(expired.status().message().find("deadline"), std::string::npos);
  backend->Release();
  EXPECT_TRUE(results[0].get_future().get().ok());
  EXPECT_TRUE(results[2].get_future().get().ok());
  // Requests 0 and 2 ran; request 1 never reached the backend.
  EXPECT_EQ(backend->batch_sizes(), (std::vector<int64_t>{1, 1}));
}

TEST(DynamicBatcherDeadlineTest, ExpiredRequestIsAnsweredWithoutRunning) {
  DoublingBackend* backend = nullptr;
  auto model = MakeModel(&backend, 4, 0);
  backend->Release();
  std::promise<StatusOr<InferenceResponse>> result;
  auto r = Request({1, 2}, "late");
  r->deadline = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  model->scheduler->Enqueue(nullptr, std::move(r), [&](StatusOr<InferenceResponse> r) {
    result.set_value(std::move(r));
  });
  EXPECT_EQ(result.get_future().get().status().code(), Status::Code::kDeadlineExceeded);
  EXPECT_TRUE(backend->batch_sizes().empty());
}

TEST(DynamicBatcherDeadlineTest, ManyExpiringAndLastingRequestsAreEachAnsweredOnce) {
  DoublingBackend* backend = nullptr;
  auto model = MakeModel(&backend, 4, 100, {}, /*max_queue_size=*/1000);
  backend->Release();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100;
  std::atomic<int> answered{0};
  std::atomic<int> expired{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto r = Request({1, 2}, std::to_string(t * kPerThread + i));
        // Every other request may expire in the queue; the rest never do.
        if (i % 2 == 0) r->deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(i);
        model->scheduler->Enqueue(nullptr, std::move(r), [&](StatusOr<InferenceResponse> r) {
          if (r.status().code() == Status::Code::kDeadlineExceeded) ++expired;
          ASSERT_TRUE(r.ok() || r.status().code() == Status::Code::kDeadlineExceeded);
          ++answered;
        });
      }
    });
  }
  for (auto& t : threads) t.join();
  model->scheduler.reset();  // finishes what is queued
  EXPECT_EQ(answered.load(), kThreads * kPerThread);
  EXPECT_LE(expired.load(), kThreads * kPerThread / 2);
}

// Longer than any test runs: a request that waits it out means Drain failed.
constexpr int64_t kHourUs = 3'600'000'000;
// A bound on waiting for a result that must come, not a measurement.
constexpr auto kGenerous = std::chrono::seconds(60);

TEST(DynamicBatcherDrainTest, RunsTheQueueAtOnceInsteadOfWaitingForTheDelay) {
  DoublingBackend* backend = nullptr;
  auto model = MakeModel(&backend, 8, kHourUs);
  backend->Release();
  std::vector<std::promise<StatusOr<InferenceResponse>>> results(2);
  model->scheduler->Enqueue(nullptr, Request({1, 2}, "a"), [&](StatusOr<InferenceResponse> r) {
    results[0].set_value(std::move(r));
  });
  model->scheduler->Enqueue(nullptr, Request({3, 4, 5, 6}, "b"),
                            [&](StatusOr<InferenceResponse> r) {
                              results[1].set_value(std::move(r));
                            });
  auto a = results[0].get_future();
  auto b = results[1].get_future();
  model->scheduler->Drain();
  ASSERT_EQ(a.wait_for(kGenerous), std::future_status::ready);
  ASSERT_EQ(b.wait_for(kGenerous), std::future_status::ready);
  auto ra = a.get();
  auto rb = b.get();
  ASSERT_TRUE(ra.ok()) << ra.status().ToString();
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  EXPECT_EQ(Values(ra->outputs[0]), (std::vector<float>{2, 4}));
  EXPECT_EQ(Values(rb->outputs[0]), (std::vector<float>{6, 8, 10, 12}));
  // Still batched: both requests ran in one call.
  EXPECT_EQ(backend->batch_sizes(), (std::vector<int64_t>{3}));
}

TEST(DynamicBatcherDrainTest, RefusesLaterRequestsAsUnavailable) {
  DoublingBackend* backend = nullptr;
  auto model = MakeModel(&backend, 8, kHourUs);
  backend->Release();
  model->scheduler->Drain();
  model->scheduler->Drain();  // idempotent
  std::optional<StatusOr<InferenceResponse>> refused;
  model->scheduler->Enqueue(nullptr, Request({1, 2}, "late"),
                            [&](StatusOr<InferenceResponse> r) { refused = std::move(r); });
  ASSERT_TRUE(refused.has_value());  // answered before Enqueue returned
  EXPECT_EQ(refused->status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(refused->status().message(), "the server is shutting down");
  EXPECT_TRUE(backend->batch_sizes().empty());
}

TEST(DynamicBatcherDrainTest, RunsWhatQueuedBehindABatchInProgress) {
  DoublingBackend* backend = nullptr;
  auto model = MakeModel(&backend, 2, kHourUs);
  std::vector<std::promise<StatusOr<InferenceResponse>>> results(3);
  auto enqueue = [&](int i) {
    model->scheduler->Enqueue(nullptr, Request({1, 2}, std::to_string(i)),
                              [&results, i](StatusOr<InferenceResponse> r) {
                                results[i].set_value(std::move(r));
                              });
  };
  enqueue(0);
  enqueue(1);  // a full batch of 2: runs without the delay, and is held
  backend->WaitForCalls(1);
  enqueue(2);  // alone in the queue, would wait an hour
  model->scheduler->Drain();
  backend->Release();
  for (auto& p : results) {
    auto f = p.get_future();
    ASSERT_EQ(f.wait_for(kGenerous), std::future_status::ready);
    EXPECT_TRUE(f.get().ok());
  }
  EXPECT_EQ(backend->batch_sizes(), (std::vector<int64_t>{2, 1}));
}

// Enqueue from several threads while Drain runs: every callback runs exactly
// once, with its own rows or UNAVAILABLE, and nothing waits out the delay.
TEST(DynamicBatcherDrainTest, ConcurrentEnqueueAndDrainAnswerEveryRequestOnce) {
  DoublingBackend* backend = nullptr;
  auto model = std::unique_ptr<Model>();
  {
    auto m = MakeModel(&backend, 4, kHourUs);
    m->scheduler.reset();
    m->config.instance_count = 3;
    m->scheduler = CreateDynamicBatcher(m.get());
    model = std::move(m);
  }
  backend->Release();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 200;
  std::atomic<int> answered{0}, served{0}, refused{0}, wrong{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < kThreads; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const float v = static_cast<float>(t * kPerThread + i);
        auto done = [&, v](StatusOr<InferenceResponse> r) {
          ++answered;
          if (r.ok()) {
            ++served;
            if (Values(r->outputs[0]) != std::vector<float>{2 * v, -2 * v}) ++wrong;
          } else if (r.status().code() == Status::Code::kUnavailable) {
            ++refused;
          } else {
            ++wrong;
          }
        };
        model->scheduler->Enqueue(nullptr, Request({v, -v}, ""), std::move(done));
      }
    });
  }
  std::this_thread::yield();
  model->scheduler->Drain();
  for (auto& c : clients) c.join();
  // Every request queued before Drain runs now; none waits out the hour.
  const auto deadline = std::chrono::steady_clock::now() + kGenerous;
  while (answered.load() < kThreads * kPerThread && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(answered.load(), kThreads * kPerThread);
  model->scheduler.reset();
  EXPECT_EQ(answered.load(), kThreads * kPerThread);  // no second call on destruction
  EXPECT_EQ(served.load() + refused.load(), kThreads * kPerThread);
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace berth
