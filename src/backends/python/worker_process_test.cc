#include "backends/python/worker_process.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <string>

#include "backends/python/worker_frame.h"

namespace berth::python {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// A worker played by /bin/sh running `script` (its socket is fd 3).
std::unique_ptr<WorkerProcess> Shell(const std::string& script) {
  auto worker = WorkerProcess::Spawn({"sh", {"-c", script}, "test/1"});
  EXPECT_TRUE(worker.ok()) << worker.status().ToString();
  return worker.ok() ? std::move(worker).value() : nullptr;
}

TEST(WorkerProcessTest, ReadsAFrameTheWorkerWrites) {
  // A 1-byte body: the kind of an ERROR frame, enough to check the framing.
  auto worker = Shell(R"(printf '\001\000\000\000\004' >&3; exec sleep 30)");
  ASSERT_NE(worker, nullptr);
  std::string body;
  ASSERT_TRUE(worker->Receive(WorkerProcess::Clock::now() + 30s, &body).ok());
  EXPECT_EQ(body, std::string(1, '\x04'));
  EXPECT_TRUE(worker->Alive());
}

TEST(WorkerProcessTest, AnExitIsReportedWithItsCode) {
  auto worker = Shell("exit 3");
  ASSERT_NE(worker, nullptr);
  std::string body;
  Status s = worker->Receive(WorkerProcess::Clock::now() + 30s, &body);
  EXPECT_EQ(s.code(), Status::Code::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("exited with code 3"));
  EXPECT_FALSE(worker->Alive());
}

TEST(WorkerProcessTest, ASilentWorkerMissesItsDeadlineAndIsKilled) {
  auto worker = Shell("exec sleep 30");
  ASSERT_NE(worker, nullptr);
  std::string body;
  EXPECT_FALSE(worker->WaitReadable(WorkerProcess::Clock::now() + 50ms));
  Status s = worker->Receive(WorkerProcess::Clock::now() + 100ms, &body);
  EXPECT_EQ(s.code(), Status::Code::kDeadlineExceeded);
  worker->Kill();
  EXPECT_FALSE(worker->Alive());
  EXPECT_EQ(worker->Describe(), "was killed by signal " + std::to_string(SIGKILL));
}

TEST(WorkerProcessTest, AnOversizedFrameLengthIsRefused) {
  auto worker = Shell(R"(printf '\377\377\377\377' >&3; exec sleep 30)");
  ASSERT_NE(worker, nullptr);
  std::string body;
  Status s = worker->Receive(WorkerProcess::Clock::now() + 30s, &body);
  EXPECT_EQ(s.code(), Status::Code::kInternal);
  EXPECT_THAT(s.message(), HasSubstr("bytes"));
}

TEST(WorkerProcessTest, AMissingInterpreterIsAClearError) {
  auto worker = WorkerProcess::Spawn({"/nonexistent/python9", {}, "test/1"});
  ASSERT_FALSE(worker.ok());
  EXPECT_EQ(worker.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(worker.status().message(), HasSubstr("--python"));
}

TEST(WorkerProcessTest, SendingToAWorkerThatIsGoneFails) {
  auto worker = Shell("exec 3>&-; exec sleep 30");
  ASSERT_NE(worker, nullptr);
  auto frame = EncodeInfer({}, {});
  ASSERT_TRUE(frame.ok());
  std::string body;
  // The worker closed its socket: reading sees the end, writing fails.
  EXPECT_FALSE(worker->Receive(WorkerProcess::Clock::now() + 30s, &body).ok());
  EXPECT_FALSE(worker->Send(*frame, WorkerProcess::Clock::now() + 30s).ok());
}

}  // namespace
}  // namespace berth::python
