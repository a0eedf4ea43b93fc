#include "core/admin_executor.h"

#include <string>
#include <utility>

namespace berth {
namespace {

Status Closed() { return Status::Unavailable("the server is shutting down"); }

}  // namespace

AdminExecutor::AdminExecutor(size_t max_queued)
    : max_queued_(max_queued < 1 ? 1 : max_queued), thread_([this] { Run(); }) {}

AdminExecutor::~AdminExecutor() { Join(); }

void AdminExecutor::Submit(Task task) {
  Status refused;
  {
    std::lock_guard lock(mu_);
    if (closed_) {
      refused = Closed();
    } else if (queue_.size() >= max_queued_) {
      refused = Status::Unavailable(
          "the server has " + std::to_string(max_queued_) +
          " model changes (load, push, promote, ...) waiting already; retry later");
    } else {
      queue_.push_back(std::move(task));
      wake_.notify_one();
      return;
    }
  }
  // Not under mu_: the task answers its request, which may take a lock of
  // the front end's.
  task(refused);
}

void AdminExecutor::Close() {
  std::deque<Task> cancelled;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    cancelled.swap(queue_);
    wake_.notify_all();
  }
  for (Task& task : cancelled) task(Closed());
}

void AdminExecutor::Join() {
  Close();
  if (thread_.joinable()) thread_.join();
}

size_t AdminExecutor::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void AdminExecutor::Run() {
  for (;;) {
    Task task;
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [this] { return closed_ || !queue_.empty(); });
      // Close() empties the queue as it closes: nothing is left to run.
      if (queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task(Status::Ok());
  }
}

}  // namespace berth
