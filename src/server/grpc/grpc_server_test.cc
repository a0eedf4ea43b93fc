#include "server/grpc/grpc_server.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "core/inference_service.h"
#include "core/model.h"
#include "core/model_manager.h"
#include "server/grpc/grpc_service.grpc.pb.h"
#include "server/server_context.h"

namespace berth::rpc {
namespace {

using namespace std::chrono_literals;

// Output `i` of `response` as floats, read from raw_output_contents (every
// reply is raw); empty if it is missing.
std::vector<float> RawFloats(const inference::ModelInferResponse& response, int i) {
  if (i >= response.raw_output_contents_size()) return {};
  const std::string& raw = response.raw_output_contents(i);
  std::vector<float> out(raw.size() / sizeof(float));
  std::memcpy(out.data(), raw.data(), out.size() * sizeof(float));
  return out;
}

// y = 2 * x for x: FP32 [-1, 2].
class DoublingBackend final : public Backend {
 public:
  DoublingBackend() {
    signature_.inputs = {{"x", DataType::kFp32, {-1, 2}}};
    signature_.outputs = {{"y", DataType::kFp32, {-1, 2}}};
  }
  const ModelSignature& signature() const override { return signature_; }
  Status Execute(std::span<const Tensor> inputs, std::span<const std::string>,
                 std::vector<Tensor>* outputs, BackendTimings*) override {
    Tensor y("y", DataType::kFp32, inputs[0].shape());
    y.bytes() = inputs[0].bytes();
    float* p = y.data<float>();
    for (int64_t i = 0; i < y.element_count(); ++i) p[i] *= 2;
    outputs->push_back(std::move(y));
    return Status::Ok();
  }

 private:
  ModelSignature signature_;
};

// Completes every request on a thread of its own, as the dynamic batcher
// does; while held, requests wait until Release().
class ThreadScheduler final : public Scheduler {
 public:
  ~ThreadScheduler() override { JoinAll(); }

  void Enqueue(std::shared_ptr<const Model> model, std::unique_ptr<InferenceRequest> request,
               InferCallback done) override {
    std::unique_lock lock(mu_);
    if (draining_) {
      lock.unlock();
      return done(ShuttingDown());
    }
    ++enqueued_;
    changed_.notify_all();
    threads_.emplace_back(
        [this, model = model.get(), request = std::move(request), done = std::move(done)] {
          {
            std::unique_lock lock(mu_);
            changed_.wait(lock, [this] { return !held_; });
          }
          done(ExecuteRequest(*model, *request));
        });
  }

  void Drain() override {
    std::lock_guard lock(mu_);
    draining_ = true;
  }

  void Hold() {
    std::lock_guard lock(mu_);
    held_ = true;
  }
  void Release() {
    std::lock_guard lock(mu_);
    held_ = false;
    changed_.notify_all();
  }
  void WaitForEnqueued(int n) {
    std::unique_lock lock(mu_);
    changed_.wait(lock, [&] { return enqueued_ >= n; });
  }
  void JoinAll() {
    Release();
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mu_);
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  bool held_ = false;
  bool draining_ = false;
  int enqueued_ = 0;
  std::vector<std::thread> threads_;
};

class GrpcServerTest : public ::testing::Test {
 protected:
  GrpcServerTest() {
    auto model = std::make_shared<Model>();
    model->name = "double";
    model->version = 1;
    model->platform = "test";
    model->config.max_batch_size = 8;
    model->backend = std::make_unique<DoublingBackend>();
    model->signature = model->backend->signature();
    auto scheduler = std::make_unique<ThreadScheduler>();
    scheduler_ = scheduler.get();
    model->scheduler = std::move(scheduler);
    model_ = model;
    ModelEntry entry;
    entry.name = "double";
    entry.versions = {{1, ModelState::kReady, "", model}};
    models_.Set(std::move(entry));
    context_.inference = &inference_;
    context_.models = &models_;
    context_.ready = &ready_;
    context_.version = "test";
  }

  ~GrpcServerTest() override {
    scheduler_->Release();
    if (server_) server_->Stop(0ms);
    scheduler_->JoinAll();
  }

  void Start(GrpcServerOptions options = {}) {
    options.port = 0;
    server_ = std::make_unique<GrpcServer>(options, &context_);
    ASSERT_TRUE(server_->Start().ok());
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                       grpc::InsecureChannelCredentials());
    stub_ = inference::GRPCInferenceService::NewStub(channel);
  }

  static inference::ModelInferRequest InferRequest(std::vector<float> row = {1, 2}) {
    inference::ModelInferRequest r;
    r.set_model_name("double");
    auto* x = r.add_inputs();
    x->set_name("x");
    x->set_datatype("FP32");
    x->add_shape(1);
    x->add_shape(static_cast<int64_t>(row.size()));
    for (float v : row) x->mutable_contents()->add_fp32_contents(v);
    return r;
  }

  grpc::Status Infer(const inference::ModelInferRequest& request,
                     inference::ModelInferResponse* response) {
    grpc::ClientContext call;
    call.set_deadline(std::chrono::system_clock::now() + 10s);
    return stub_->ModelInfer(&call, request, response);
  }

  ModelManager models_;
  InferenceService inference_{&models_, nullptr};
  std::atomic<bool> ready_{true};
  ServerContext context_;
  std::shared_ptr<const Model> model_;
  ThreadScheduler* scheduler_ = nullptr;
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
};

TEST_F(GrpcServerTest, AnswersHealthAndMetadata) {
  Start();
  grpc::ClientContext live_call;
  inference::ServerLiveResponse live;
  ASSERT_TRUE(stub_->ServerLive(&live_call, {}, &live).ok());
  EXPECT_TRUE(live.live());

  grpc::ClientContext metadata_call;
  inference::ModelMetadataRequest request;
  request.set_name("double");
  inference::ModelMetadataResponse metadata;
  ASSERT_TRUE(stub_->ModelMetadata(&metadata_call, request, &metadata).ok());
  EXPECT_EQ(metadata.name(), "double");
  ASSERT_EQ(metadata.versions_size(), 1);
  EXPECT_EQ(metadata.versions(0), "1");

  grpc::ClientContext unknown_call;
  request.set_name("nope");
  EXPECT_EQ(stub_->ModelMetadata(&unknown_call, request, &metadata).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(GrpcServerTest, RepliesFromTheThreadThatCompletesTheInference) {
  Start();
  inference::ModelInferResponse response;
  grpc::Status s = Infer(InferRequest({1.5f, -2}), &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(response.outputs_size(), 1);
  EXPECT_EQ(response.outputs(0).name(), "y");
  EXPECT_EQ(RawFloats(response, 0), (std::vector<float>{3.0f, -4.0f}));
}

TEST_F(GrpcServerTest, RefusesABadRequestWithoutInference) {
  Start();
  inference::ModelInferResponse response;
  EXPECT_EQ(Infer(InferRequest({1, 2, 3}), &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  inference::ModelInferRequest unnamed = InferRequest();
  unnamed.clear_model_name();
  EXPECT_EQ(Infer(unnamed, &response).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(GrpcServerTest, ServesConcurrentCallsOnSeveralThreads) {
  GrpcServerOptions options;
  options.threads = 3;
  Start(options);
  constexpr int kClients = 8;
  constexpr int kCalls = 50;
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < kCalls; ++i) {
        inference::ModelInferResponse response;
        const float v = static_cast<float>(c * kCalls + i);
        if (Infer(InferRequest({v, 1}), &response).ok() &&
            RawFloats(response, 0) == std::vector<float>{2 * v, 2}) {
          ++ok;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), kClients * kCalls);
}

TEST_F(GrpcServerTest, RefusesAMessageOverTheLimit) {
  GrpcServerOptions options;
  options.max_message_bytes = 1024;
  Start(options);
  inference::ModelInferResponse response;
  EXPECT_EQ(Infer(InferRequest(std::vector<float>(1000, 1.0f)), &response).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(Infer(InferRequest(), &response).ok());
}

TEST_F(GrpcServerTest, StopLetsAnInFlightCallFinishWithinTheGrace) {
  Start();
  scheduler_->Hold();
  auto reply = std::async(std::launch::async, [this] {
    inference::ModelInferResponse response;
    grpc::Status s = Infer(InferRequest({4, 5}), &response);
    return s.ok() && !RawFloats(response, 0).empty() ? RawFloats(response, 0)[0] : -1.0f;
  });
  scheduler_->WaitForEnqueued(1);
  auto stopped = std::async(std::launch::async, [this] { server_->Stop(10s); });
  EXPECT_EQ(stopped.wait_for(200ms), std::future_status::timeout);
  scheduler_->Release();
  EXPECT_EQ(reply.get(), 8.0f);
  EXPECT_EQ(stopped.wait_for(10s), std::future_status::ready);
}

TEST_F(GrpcServerTest, StopPastTheGraceAnswersUnavailableWithoutWaitingForTheInference) {
  Start();
  scheduler_->Hold();
  auto reply = std::async(std::launch::async, [this] {
    inference::ModelInferResponse response;
    return Infer(InferRequest(), &response);
  });
  scheduler_->WaitForEnqueued(1);
  auto stopped = std::async(std::launch::async, [this] { server_->Stop(50ms); });
  const grpc::Status s = reply.get();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(s.error_message(), "the server is shutting down");
  // The inference is still held: Stop does not wait for it...
  ASSERT_EQ(stopped.wait_for(30s), std::future_status::ready);
  server_.reset();
  // ...and its late completion finds no call to answer and touches nothing
  // of the server (ASan would see a use after free).
  scheduler_->Release();
  scheduler_->JoinAll();
}

TEST_F(GrpcServerTest, StopIsIdempotentAndStartFailsOnABoundPort) {
  Start();
  GrpcServerOptions taken;
  taken.port = server_->port();
  GrpcServer second(taken, &context_);
  EXPECT_EQ(second.Start().code(), Status::Code::kUnavailable);
  EXPECT_EQ(second.port(), 0);
  server_->Stop(0ms);
  server_->Stop(0ms);
}

}  // namespace
}  // namespace berth::rpc
