#include "core/inference_service.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor_testing.h"

namespace berth {
namespace {

using ::berth::testing::MakeTensor;

// y = x for x: FP32 [-1, 2], marking its phases as a real backend does.
class EchoBackend final : public Backend {
 public:
  EchoBackend() {
    signature_.inputs = {{"x", DataType::kFp32, {-1, 2}}};
    signature_.outputs = {{"y", DataType::kFp32, {-1, 2}}};
  }
  const ModelSignature& signature() const override { return signature_; }
  Status Execute(std::span<const Tensor> inputs, std::span<const std::string>,
                 std::vector<Tensor>* outputs, BackendTimings* timings) override {
    timings->inputs_ready = std::chrono::steady_clock::now();
    Tensor y("y", DataType::kFp32, inputs[0].shape());
    y.bytes() = inputs[0].bytes();
    outputs->push_back(std::move(y));
    timings->engine_done = std::chrono::steady_clock::now();
    return Status::Ok();
  }

 private:
  ModelSignature signature_;
};

// Records what it is told, and the version's in-flight count at that moment.
class RecordingObserver final : public InferenceObserver {
 public:
  struct Call {
    std::string model, version;
    Status status;
    InferenceTimings timings;
    int64_t in_flight = 0;
  };
  void OnInferenceDone(const std::string& model, const std::string& version, const Status& status,
                       const InferenceTimings& timings) override {
    calls.push_back({model, version, status, timings, watched ? watched->in_flight.load() : -1});
  }
  const Model* watched = nullptr;
  std::vector<Call> calls;
};

class InferenceServiceTest : public ::testing::Test {
 protected:
  void Publish(int64_t max_batch_size) {
    auto m = std::make_shared<Model>();
    m->name = "echo";
    m->version = 2;
    m->config.name = "echo";
    m->config.max_batch_size = max_batch_size;
    m->backend = std::make_unique<EchoBackend>();
    m->signature = m->backend->signature();
    m->scheduler = CreateDirectScheduler();
    model_ = m.get();
    observer_.watched = model_;
    ModelEntry e;
    e.name = "echo";
    e.versions.push_back({2, ModelState::kReady, "", std::move(m)});
    models_.Set(std::move(e));
  }

  StatusOr<InferenceResponse> Infer(std::vector<int64_t> shape, std::vector<float> values) {
    auto request = std::make_unique<InferenceRequest>();
    request->model_name = "echo";
    request->inputs.push_back(MakeTensor<float>("x", DataType::kFp32, std::move(shape), values));
    StatusOr<InferenceResponse> result = Status::Internal("not answered");
    service_.Infer(std::move(request),
                   [&](StatusOr<InferenceResponse> r) { result = std::move(r); });
    return result;
  }

  ModelManager models_;
  RecordingObserver observer_;
  InferenceService service_{&models_, &observer_};
  const Model* model_ = nullptr;
};

TEST_F(InferenceServiceTest, TheObserverGetsTheRequestsExecution) {
  Publish(8);
  ASSERT_TRUE(Infer({3, 2}, {1, 2, 3, 4, 5, 6}).ok());
  ASSERT_EQ(observer_.calls.size(), 1u);
  const auto& call = observer_.calls[0];
  EXPECT_EQ(call.model, "echo");
  EXPECT_EQ(call.version, "2");
  EXPECT_TRUE(call.status.ok());
  EXPECT_EQ(call.timings.batch_size, 3);
  EXPECT_TRUE(call.timings.counts_execution);
  // The direct scheduler has no queue.
  EXPECT_EQ(call.timings.queue.count(), 0);
  EXPECT_NE(call.timings.finished, std::chrono::steady_clock::time_point{});
  // In flight while it is reported, not after.
  EXPECT_EQ(call.in_flight, 1);
  EXPECT_EQ(model_->in_flight.load(), 0);
}

TEST_F(InferenceServiceTest, AModelWithoutABatchDimensionRunsBatchesOfOne) {
  Publish(0);
  ASSERT_TRUE(Infer({3, 2}, {1, 2, 3, 4, 5, 6}).ok());
  ASSERT_EQ(observer_.calls.size(), 1u);
  EXPECT_EQ(observer_.calls[0].timings.batch_size, 1);
}

TEST_F(InferenceServiceTest, AFailedRequestCountsNoExecution) {
  Publish(8);
  EXPECT_FALSE(Infer({1, 3}, {1, 2, 3}).ok());  // wrong shape: refused by the validator
  ASSERT_EQ(observer_.calls.size(), 1u);
  const auto& call = observer_.calls[0];
  EXPECT_EQ(call.status.code(), Status::Code::kInvalidArgument);
  EXPECT_FALSE(call.timings.counts_execution);
  EXPECT_EQ(call.timings.compute_infer.count(), 0);
  EXPECT_EQ(model_->in_flight.load(), 0);
}

// Runs each request directly, remembering the deadline it was handed.
class DeadlineRecorder final : public Scheduler {
 public:
  void Enqueue(std::shared_ptr<const Model> model, std::unique_ptr<InferenceRequest> request,
               InferCallback done) override {
    deadlines.push_back(request->deadline);
    done(ExecuteRequest(*model, *request));
  }
  void Drain() override {}
  std::vector<std::chrono::steady_clock::time_point> deadlines;
};

class InferenceServiceDeadlineTest : public ::testing::Test {
 protected:
  using Clock = std::chrono::steady_clock;

  // Runs one request through a service with `default_timeout`; returns the
  // deadline its scheduler saw, and the span [before, after] of the call.
  Clock::time_point DeadlineOf(std::chrono::microseconds default_timeout,
                               std::optional<int64_t> timeout_param,
                               Clock::time_point front_end_deadline = Clock::time_point::max()) {
    ModelManager models;
    auto m = std::make_shared<Model>();
    m->name = "echo";
    m->version = 1;
    m->backend = std::make_unique<EchoBackend>();
    m->signature = m->backend->signature();
    auto recorder = std::make_unique<DeadlineRecorder>();
    DeadlineRecorder* seen = recorder.get();
    m->scheduler = std::move(recorder);
    ModelEntry e;
    e.name = "echo";
    e.versions.push_back({1, ModelState::kReady, "", std::move(m)});
    models.Set(std::move(e));
    InferenceService service(&models, nullptr, nullptr, default_timeout);
    auto request = std::make_unique<InferenceRequest>();
    request->model_name = "echo";
    request->inputs.push_back(MakeTensor<float>("x", DataType::kFp32, {1, 2}, {1, 2}));
    if (timeout_param) request->parameters["timeout"] = *timeout_param;
    request->deadline = front_end_deadline;
    before = Clock::now();
    service.Infer(std::move(request), [](StatusOr<InferenceResponse> r) { ASSERT_TRUE(r.ok()); });
    after = Clock::now();
    EXPECT_EQ(seen->deadlines.size(), 1u);
    return seen->deadlines.empty() ? Clock::time_point{} : seen->deadlines[0];
  }

  Clock::time_point before, after;
};

TEST_F(InferenceServiceDeadlineTest, NoTimeoutMeansNoDeadline) {
  EXPECT_EQ(DeadlineOf(std::chrono::microseconds(0), std::nullopt), Clock::time_point::max());
  // A timeout parameter of 0 is no limit, as Triton's.
  EXPECT_EQ(DeadlineOf(std::chrono::microseconds(0), 0), Clock::time_point::max());
  // Nor is one too large to add to the clock.
  EXPECT_EQ(DeadlineOf(std::chrono::microseconds(0), INT64_MAX), Clock::time_point::max());
}

TEST_F(InferenceServiceDeadlineTest, TheEarliestOfServerDefaultParameterAndFrontEndWins) {
  using std::chrono::microseconds;
  Clock::time_point d = DeadlineOf(microseconds(5'000'000), std::nullopt);
  EXPECT_GE(d, before + microseconds(5'000'000));
  EXPECT_LE(d, after + microseconds(5'000'000));
  d = DeadlineOf(microseconds(5'000'000), 1'000);  // the parameter asks for less
  EXPECT_GE(d, before + microseconds(1'000));
  EXPECT_LE(d, after + microseconds(1'000));
  d = DeadlineOf(microseconds(1'000), 5'000'000);  // the server's default is shorter
  EXPECT_LE(d, after + microseconds(1'000));
  const Clock::time_point grpc = Clock::now() + microseconds(10);
  EXPECT_EQ(DeadlineOf(microseconds(5'000'000), 5'000'000, grpc), grpc);
}

TEST_F(InferenceServiceTest, ARequestPastItsDeadlineIsAnsweredWithoutRunning) {
  Publish(8);
  auto request = std::make_unique<InferenceRequest>();
  request->model_name = "echo";
  request->inputs.push_back(MakeTensor<float>("x", DataType::kFp32, {1, 2}, {1, 2}));
  request->deadline = std::chrono::steady_clock::now() - std::chrono::milliseconds(1);
  StatusOr<InferenceResponse> result = Status::Internal("not answered");
  service_.Infer(std::move(request), [&](StatusOr<InferenceResponse> r) { result = std::move(r); });
  EXPECT_EQ(result.status().code(), Status::Code::kDeadlineExceeded);
  ASSERT_EQ(observer_.calls.size(), 1u);
  EXPECT_EQ(observer_.calls[0].status.code(), Status::Code::kDeadlineExceeded);
  EXPECT_FALSE(observer_.calls[0].timings.counts_execution);
}

}  // namespace
}  // namespace berth

namespace berth {
namespace {

// Counts the sampling calls and keeps the rows it saw.
class SamplingObserver final : public InferenceObserver {
 public:
  struct Seen final : InferenceSample {
    int64_t request_elements = 0;
  };
  void OnInferenceDone(const std::string&, const std::string&, const Status&,
                       const InferenceTimings&) override {}
  std::shared_ptr<InferenceSample> OnSampledRequest(const Model&,
                                                    const InferenceRequest& request) override {
    ++requests;
    auto seen = std::make_shared<Seen>();
    seen->request_elements = request.inputs[0].element_count();
    return seen;
  }
  void OnSampledResponse(const Model& model, std::shared_ptr<InferenceSample> sample,
                         const InferenceResponse& response) override {
    ++responses;
    last_model = model.name;
    last_request_elements = static_cast<Seen*>(sample.get())->request_elements;
    last_response_elements = response.outputs[0].element_count();
  }
  int requests = 0;
  int responses = 0;
  std::string last_model;
  int64_t last_request_elements = 0;
  int64_t last_response_elements = 0;
};

TEST(InferenceServiceSamplingTest, SampledRequestsReachTheObserverWithTheirResponse) {
  for (double rate : {0.0, 1.0}) {
    ModelManager models;
    SamplingObserver observer;
    InferenceService service(&models, &observer);
    auto m = std::make_shared<Model>();
    m->name = "echo";
    m->version = 1;
    m->config.max_batch_size = 8;
    m->config.monitoring.sample_rate = rate;
    m->backend = std::make_unique<EchoBackend>();
    m->signature = m->backend->signature();
    m->scheduler = CreateDirectScheduler();
    ModelEntry e;
    e.name = "echo";
    e.versions.push_back({1, ModelState::kReady, "", std::move(m)});
    models.Set(std::move(e));
    auto infer = [&](std::vector<int64_t> shape, std::vector<float> values) {
      auto request = std::make_unique<InferenceRequest>();
      request->model_name = "echo";
      request->inputs.push_back(
          MakeTensor<float>("x", DataType::kFp32, std::move(shape), values));
      bool ok = false;
      service.Infer(std::move(request), [&](StatusOr<InferenceResponse> r) { ok = r.ok(); });
      return ok;
    };
    EXPECT_TRUE(infer({2, 2}, {1, 2, 3, 4}));
    EXPECT_FALSE(infer({1, 3}, {1, 2, 3}));  // refused by the validator: never sampled
    EXPECT_EQ(observer.requests, rate > 0 ? 1 : 0);
    EXPECT_EQ(observer.responses, rate > 0 ? 1 : 0);
    if (rate > 0) {
      EXPECT_EQ(observer.last_model, "echo");
      EXPECT_EQ(observer.last_request_elements, 4);
      EXPECT_EQ(observer.last_response_elements, 4);
    }
  }
}

TEST(InferenceServiceSamplingTest, SampleDrawFollowsTheRate) {
  EXPECT_FALSE(SampleDraw(0));
  EXPECT_TRUE(SampleDraw(1));
  int drawn = 0;
  for (int i = 0; i < 100000; ++i) drawn += SampleDraw(0.1) ? 1 : 0;
  // 10,000 expected, standard deviation about 95.
  EXPECT_GT(drawn, 9000);
  EXPECT_LT(drawn, 11000);
}

}  // namespace
}  // namespace berth
