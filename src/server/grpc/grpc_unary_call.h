// UnaryCall: one unary RPC on gRPC's asynchronous (completion-queue) API,
// from asking gRPC for the next call of a method to the reply.
//
// The completion-queue API lets the server choose its threads: the thread
// that polls a queue also runs the handler, so a request that is answered
// inline costs no thread hop. (The callback API of gRPC 1.51 runs its
// callbacks on an internal pool of at least two threads that hand the
// poller role to each other on every event: about seven context switches
// per request.)
//
// Every object on a completion queue is a CallTag; the thread that takes it
// off the queue calls Proceed(ok). A UnaryCall owns itself: it is created
// waiting for a call, replaces itself with a new waiting call as soon as its
// call arrives, and deletes itself once its reply has gone out (or could not).
// LiveCalls counts them, so that the server shuts its queues down only once
// no call is left to post on them.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "core/status.h"
#include "server/grpc/grpc_status.h"

namespace berth::rpc {

// What a completion-queue thread does with the tag it dequeued. `ok` is
// gRPC's success bit for the operation the tag names.
class CallTag {
 public:
  virtual void Proceed(bool ok) = 0;

 protected:
  ~CallTag() = default;
};

// The number of UnaryCalls alive, waiting or answering. Thread-safe.
class LiveCalls {
 public:
  void Add() { count_.fetch_add(1, std::memory_order_relaxed); }
  void Remove() {
    if (count_.fetch_sub(1, std::memory_order_acq_rel) == 1) count_.notify_all();
  }
  // Blocks until no call is alive. Only a live call creates another, so once
  // the count is zero it stays zero.
  void WaitUntilNone() const {
    for (int64_t n = count_.load(std::memory_order_acquire); n != 0;
         n = count_.load(std::memory_order_acquire)) {
      count_.wait(n, std::memory_order_acquire);
    }
  }

 private:
  std::atomic<int64_t> count_{0};
};

// A method's part in the server: asks gRPC for its next call on a queue.
class UnaryMethodBase {
 public:
  virtual ~UnaryMethodBase() = default;
  // Puts one UnaryCall of this method on `cq`, waiting for a call. The queue
  // must not be shut down yet.
  virtual void RequestCall(grpc::ServerCompletionQueue* cq) const = 0;
};

template <typename Request, typename Response>
class UnaryMethod;

template <typename Request, typename Response>
class UnaryCall final : public CallTag {
 public:
  using Method = UnaryMethod<Request, Response>;

  // Starts waiting for the next call of `method` on `cq`. `method` must
  // outlive the call.
  static void Start(const Method* method, grpc::ServerCompletionQueue* cq) {
    auto* call = new UnaryCall(method, cq);
    method->request_(&call->context_, &call->request_, &call->responder_, cq, call);
  }

  const Request& request() const { return request_; }
  // When the call arrived (its handling began).
  std::chrono::steady_clock::time_point started() const { return started_; }
  // The client's address as gRPC writes it ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000").
  std::string peer() const { return context_.peer(); }
  // The first value of the client's metadata `key` (lower-case), or empty;
  // valid until the call replies.
  std::string_view metadata(std::string_view key) const {
    for (const auto& [k, v] : context_.client_metadata()) {
      if (std::string_view(k.data(), k.size()) == key) return std::string_view(v.data(), v.size());
    }
    return {};
  }
  // The client's deadline on the steady clock; time_point::max() if it set
  // none.
  std::chrono::steady_clock::time_point deadline() const {
    const auto deadline = context_.deadline();
    if (deadline == std::chrono::system_clock::time_point::max()) {
      return std::chrono::steady_clock::time_point::max();
    }
    const auto left = deadline - std::chrono::system_clock::now();
    // Far enough to be no deadline, and safe from overflowing the sum.
    if (left > std::chrono::hours(24 * 365)) return std::chrono::steady_clock::time_point::max();
    return std::chrono::steady_clock::now() +
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(left);
  }
  // Filled in by the handler before Reply.
  Response* response() { return &response_; }
  // Who asks, set once the call is authorized (auth::Decision::actor): the
  // API key's name, or the client's address. The audit log's actor.
  const std::string& actor() const { return actor_; }
  void set_actor(std::string actor) { actor_ = std::move(actor); }
  // Sent with the reply's status; before Reply.
  void AddTrailingMetadata(const std::string& key, const std::string& value) {
    context_.AddTrailingMetadata(key, value);
  }

  // Sends the reply: `response()` if `status` is OK, else only the status.
  // Call exactly once, from any thread; the call may be gone when it returns.
  void Reply(const Status& status) {
    state_ = State::kReplying;
    responder_.Finish(response_, ToGrpcStatus(status), this);
  }

  void Proceed(bool ok) override {
    if (state_ == State::kReplying || !ok) {
      // Reply done (or the client is gone), or the server is shutting down
      // and no call will come.
      LiveCalls* live = method_->live_;
      delete this;
      live->Remove();
      return;
    }
    // Keep one call of this method waiting on this queue before handling
    // this one. The handler may Reply, and so delete `this`, before it
    // returns.
    Start(method_, cq_);
    state_ = State::kHandling;
    started_ = std::chrono::steady_clock::now();
    method_->handler_(*this);
  }

 private:
  enum class State { kWaiting, kHandling, kReplying };

  UnaryCall(const Method* method, grpc::ServerCompletionQueue* cq)
      : method_(method), cq_(cq), responder_(&context_) {
    method_->live_->Add();
  }
  ~UnaryCall() = default;

  const Method* const method_;
  grpc::ServerCompletionQueue* const cq_;
  // Written by the thread that handles or replies, read by the thread that
  // dequeues the next event; the completion queue orders the two.
  State state_ = State::kWaiting;
  std::chrono::steady_clock::time_point started_;
  grpc::ServerContext context_;
  std::string actor_;
  Request request_;
  Response response_;
  grpc::ServerAsyncResponseWriter<Response> responder_;
};

// A unary method: how to ask gRPC for its calls (the generated
// AsyncService::Request<Method>) and how to answer one.
template <typename Request, typename Response>
class UnaryMethod final : public UnaryMethodBase {
 public:
  using Call = UnaryCall<Request, Response>;
  using RequestFn =
      std::function<void(grpc::ServerContext*, Request*, grpc::ServerAsyncResponseWriter<Response>*,
                         grpc::ServerCompletionQueue*, void*)>;
  // Runs on the queue's thread; must see to it that call.Reply() is called
  // exactly once, now or later from any thread.
  using Handler = std::function<void(Call& call)>;

  // `live` counts this method's calls; it must outlive them.
  UnaryMethod(RequestFn request, Handler handler, LiveCalls* live)
      : request_(std::move(request)), handler_(std::move(handler)), live_(live) {}

  void RequestCall(grpc::ServerCompletionQueue* cq) const override { Call::Start(this, cq); }

 private:
  friend Call;
  const RequestFn request_;
  const Handler handler_;
  LiveCalls* const live_;
};

}  // namespace berth::rpc
