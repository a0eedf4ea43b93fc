// One Python worker process (python -m berth.runtime.worker) and the socket
// the server talks to it over (backends/python/worker_frame.h).
//
// The worker's stdout and stderr go to the server log, one line per entry.
// It watches for the server's death itself (a parent that is gone, or the
// socket's end of file) and exits; the destructor kills and reaps it.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/status.h"

namespace berth::python {

struct WorkerLaunch {
  // argv[0], looked up on PATH when it has no slash.
  std::string interpreter;
  // The arguments after the interpreter; the worker's socket is fd 3.
  std::vector<std::string> args;
  // Names the worker in log lines, e.g. "iris/1".
  std::string log_name;
};

// Not thread-safe: one request at a time uses a worker (the backend's pool
// hands each to one caller).
class WorkerProcess {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts the process. It has not loaded anything yet: read its READY.
  static StatusOr<std::unique_ptr<WorkerProcess>> Spawn(const WorkerLaunch& launch);
  ~WorkerProcess();

  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  // Writes a whole frame (worker_frame.h's Encode*) by `deadline`.
  Status Send(std::string_view frame, Clock::time_point deadline);
  // Reads the next frame's body by `deadline`. DeadlineExceeded past it;
  // Unavailable, saying how the worker ended, if it closed the socket.
  Status Receive(Clock::time_point deadline, std::string* body);

  // True once a frame's first byte (or the socket's end) can be read;
  // false at `deadline`.
  bool WaitReadable(Clock::time_point deadline);

  // False once the process has exited (reaped here).
  bool Alive();
  // SIGKILL and reap; idempotent.
  void Kill();
  // "exited with code N" / "was killed by signal N" / "is running".
  std::string Describe();
  pid_t pid() const { return pid_; }

 private:
  WorkerProcess(pid_t pid, int socket, int log_pipe, std::string log_name);
  void ForwardLog();
  // Why the socket closed, after waiting briefly for the process to end.
  Status Ended();

  const pid_t pid_;
  const int socket_;
  const int log_pipe_;
  const std::string log_name_;
  bool reaped_ = false;
  int wait_status_ = 0;
  std::atomic<bool> stop_log_{false};
  std::thread log_thread_;
};

}  // namespace berth::python
