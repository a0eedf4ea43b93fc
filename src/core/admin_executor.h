// AdminExecutor: the thread that changes what is served, off the network
// threads.
//
// Loading a model (a push's trial load, a promotion's load and warm-up, a
// repository load) takes seconds for a big model. Run on a front end's
// thread it held that thread the whole time: with --http-threads 1 every
// inference waited behind a push. The front ends hand such actions to this
// executor instead and answer their request from the action's completion,
// as they answer an inference from the scheduler's.
//
// One thread runs the actions one at a time, in the order they came: two
// changes of the registry never interleave (the repository serialises them
// anyway), and the loads of a burst of changes do not compete for the
// cores that serve inference. At most `max_queued` actions wait; one more
// is refused at once.
//
// Every submitted task runs exactly once, with the Status that says whether
// it may act: Ok on the executor's thread, or Unavailable (queue full, or
// the executor closed) without acting, on the submitter's thread (refused
// at once) or on Close()'s (still queued when the server began to shut
// down). A task must answer its request in both cases. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "core/status.h"
#include "core/thread_annotations.h"

namespace berth {

class AdminExecutor {
 public:
  // Receives Ok to act, or Unavailable to only answer with it.
  using Task = std::function<void(const Status& admitted)>;

  // Starts the thread. `max_queued` >= 1: how many actions may wait behind
  // the one running.
  explicit AdminExecutor(size_t max_queued);
  // Close(), then waits for the running action (Join()).
  ~AdminExecutor();
  AdminExecutor(const AdminExecutor&) = delete;
  AdminExecutor& operator=(const AdminExecutor&) = delete;

  // Queues `task`, or runs it at once with Unavailable if the queue holds
  // max_queued actions or Close() was called.
  void Submit(Task task) LOCKS_EXCLUDED(mu_);

  // Refuses every later Submit and runs each queued task with Unavailable
  // ("the server is shutting down"), on the caller's thread. The running
  // action goes on. Idempotent.
  void Close() LOCKS_EXCLUDED(mu_);

  // Close(), then waits until the running action has finished and the
  // thread has ended. Idempotent; not from a task.
  void Join() LOCKS_EXCLUDED(mu_);

  // The actions waiting (not the one running): for tests and /metrics.
  size_t queued() const LOCKS_EXCLUDED(mu_);

 private:
  void Run() LOCKS_EXCLUDED(mu_);

  const size_t max_queued_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Task> queue_ GUARDED_BY(mu_);
  bool closed_ GUARDED_BY(mu_) = false;
  std::thread thread_;  // started last: Run reads the fields above
};

}  // namespace berth
