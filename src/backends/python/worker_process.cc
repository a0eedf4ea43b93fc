#include "backends/python/worker_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "backends/python/worker_frame.h"
#include "core/logging.h"

extern char** environ;

namespace berth::python {
namespace {

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// Moves `fd` to a descriptor >= 10 with FD_CLOEXEC: the spawn's dup2 onto
// 2 and 3 then never meets a source that already sits there (dup2 onto
// itself would keep the close-on-exec flag).
int MoveHigh(int fd) {
  const int high = fcntl(fd, F_DUPFD_CLOEXEC, 10);
  close(fd);
  return high;
}

// Milliseconds left until `deadline`, for poll() (0 when past it).
int MillisLeft(WorkerProcess::Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - WorkerProcess::Clock::now())
                        .count();
  if (left <= 0) return 0;
  return left > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(left);
}

}  // namespace

StatusOr<std::unique_ptr<WorkerProcess>> WorkerProcess::Spawn(const WorkerLaunch& launch) {
  int sockets[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets) != 0) {
    return Status::Internal(Errno("cannot create a socket pair for a Python worker"));
  }
  int log[2];
  if (pipe2(log, O_CLOEXEC) != 0) {
    close(sockets[0]);
    close(sockets[1]);
    return Status::Internal(Errno("cannot create a pipe for a Python worker's log"));
  }
  const int child_socket = MoveHigh(sockets[1]);
  const int child_log = MoveHigh(log[1]);
  auto close_child = [&] {
    close(child_socket);
    close(child_log);
  };
  if (child_socket < 0 || child_log < 0) {
    close_child();
    close(sockets[0]);
    close(log[0]);
    return Status::Internal(Errno("cannot set up a Python worker's descriptors"));
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, child_log, 1);
  posix_spawn_file_actions_adddup2(&actions, child_log, 2);
  posix_spawn_file_actions_adddup2(&actions, child_socket, 3);
  // Its own process group: a signal sent to the server's group (a terminal's
  // Ctrl-C) reaches the server, which stops its workers in order.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);

  std::vector<std::string> argv_strings;
  argv_strings.push_back(launch.interpreter);
  argv_strings.insert(argv_strings.end(), launch.args.begin(), launch.args.end());
  std::vector<char*> argv;
  for (auto& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);

  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, launch.interpreter.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close_child();
  if (rc != 0) {
    close(sockets[0]);
    close(log[0]);
    return Status::FailedPrecondition("cannot start the Python interpreter '" + launch.interpreter +
                                      "': " + std::strerror(rc) +
                                      " (set --python or python.interpreter in the model's config)");
  }
  const int flags = fcntl(sockets[0], F_GETFL);
  fcntl(sockets[0], F_SETFL, flags | O_NONBLOCK);
  LOG_INFO("started a Python worker", {{"model", launch.log_name}, {"pid", std::to_string(pid)}});
  return std::unique_ptr<WorkerProcess>(new WorkerProcess(pid, sockets[0], log[0], launch.log_name));
}

WorkerProcess::WorkerProcess(pid_t pid, int socket, int log_pipe, std::string log_name)
    : pid_(pid), socket_(socket), log_pipe_(log_pipe), log_name_(std::move(log_name)) {
  log_thread_ = std::thread([this] { ForwardLog(); });
}

WorkerProcess::~WorkerProcess() {
  // The socket closes first: a worker waiting for a request sees its end
  // of file and exits; the kill covers one busy in the model's code.
  close(socket_);
  Kill();
  stop_log_ = true;
  log_thread_.join();
  close(log_pipe_);
}

void WorkerProcess::ForwardLog() {
  std::string pending;
  char buffer[4096];
  const std::string pid = std::to_string(pid_);
  auto emit = [&](std::string_view line) {
    if (!line.empty()) LOG_INFO("python worker", {{"model", log_name_}, {"pid", pid}, {"line", line}});
  };
  while (true) {
    pollfd p{log_pipe_, POLLIN, 0};
    const int ready = poll(&p, 1, 100);
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) {
      // Ends when the worker is gone even if a grandchild it left behind
      // still holds the pipe open.
      if (stop_log_) break;
      continue;
    }
    const ssize_t n = read(log_pipe_, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buffer, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      emit(std::string_view(pending).substr(start, nl - start));
    }
    pending.erase(0, start);
    // A line without an end is cut rather than held without bound.
    if (pending.size() > 64 * 1024) {
      emit(pending);
      pending.clear();
    }
  }
  emit(pending);
}

Status WorkerProcess::Send(std::string_view frame, Clock::time_point deadline) {
  while (!frame.empty()) {
    const ssize_t n = send(socket_, frame.data(), frame.size(), MSG_NOSIGNAL);
    if (n > 0) {
      frame.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{socket_, POLLOUT, 0};
      const int ready = poll(&p, 1, MillisLeft(deadline));
      if (ready == 0) return Status::DeadlineExceeded("the Python worker did not take the request in time");
      continue;
    }
    return Ended();
  }
  return Status::Ok();
}

Status WorkerProcess::Receive(Clock::time_point deadline, std::string* body) {
  uint32_t length = 0;
  bool have_length = false;
  std::string header;
  body->clear();
  while (true) {
    std::string& target = have_length ? *body : header;
    const size_t want = have_length ? length : 4;
    if (target.size() == want) {
      if (have_length) return Status::Ok();
      std::memcpy(&length, header.data(), 4);
      if (length == 0 || length > kMaxFrameBytes) {
        return Status::Internal("the Python worker sent a frame of " + std::to_string(length) +
                                " bytes (1 to " + std::to_string(kMaxFrameBytes) + " allowed)");
      }
      have_length = true;
      body->reserve(length);
      continue;
    }
    char buffer[64 * 1024];
    const size_t chunk = std::min(sizeof(buffer), want - target.size());
    const ssize_t n = recv(socket_, buffer, chunk, 0);
    if (n > 0) {
      target.append(buffer, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{socket_, POLLIN, 0};
      if (poll(&p, 1, MillisLeft(deadline)) == 0) {
        return Status::DeadlineExceeded("the Python worker did not answer in time");
      }
      continue;
    }
    return Ended();
  }
}

bool WorkerProcess::WaitReadable(Clock::time_point deadline) {
  while (true) {
    pollfd p{socket_, POLLIN, 0};
    const int ready = poll(&p, 1, MillisLeft(deadline));
    if (ready > 0) return true;
    if (ready == 0 || errno != EINTR) return ready != 0;
  }
}

Status WorkerProcess::Ended() {
  // The socket closes as the process exits; give the exit a moment to land.
  for (int i = 0; i < 50 && Alive(); ++i) usleep(10'000);
  return Status::Unavailable("the Python worker " + Describe());
}

bool WorkerProcess::Alive() {
  if (reaped_) return false;
  const pid_t r = waitpid(pid_, &wait_status_, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) reaped_ = true;
  return !reaped_;
}

void WorkerProcess::Kill() {
  if (reaped_) return;
  kill(pid_, SIGKILL);
  while (waitpid(pid_, &wait_status_, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
}

std::string WorkerProcess::Describe() {
  if (Alive()) return "is running";
  if (WIFEXITED(wait_status_)) return "exited with code " + std::to_string(WEXITSTATUS(wait_status_));
  if (WIFSIGNALED(wait_status_)) {
    return "was killed by signal " + std::to_string(WTERMSIG(wait_status_));
  }
  return "ended";
}

}  // namespace berth::python
