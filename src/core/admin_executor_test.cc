#include "core/admin_executor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace berth {
namespace {

// A gate a task waits on, so that a test can hold the executor's thread.
struct Gate {
  std::promise<void> entered;
  std::promise<void> open;
  std::shared_future<void> opened = open.get_future().share();
};

TEST(AdminExecutorTest, RunsTasksInOrderOnItsOwnThread) {
  AdminExecutor executor(8);
  std::mutex mu;
  std::vector<int> order;
  std::vector<std::thread::id> threads;
  std::promise<void> done;
  for (int i = 0; i < 5; ++i) {
    executor.Submit([&, i](const Status& admitted) {
      ASSERT_TRUE(admitted.ok());
      std::lock_guard lock(mu);
      order.push_back(i);
      threads.push_back(std::this_thread::get_id());
      if (i == 4) done.set_value();
    });
  }
  done.get_future().wait();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  for (const auto& id : threads) {
    EXPECT_NE(id, std::this_thread::get_id());
    EXPECT_EQ(id, threads.front());
  }
}

TEST(AdminExecutorTest, RefusesOverItsBoundAtOnce) {
  AdminExecutor executor(2);
  Gate gate;
  executor.Submit([&](const Status&) {
    gate.entered.set_value();
    gate.opened.wait();
  });
  gate.entered.get_future().wait();  // running, so not counted as queued
  std::atomic<int> ran{0};
  std::promise<void> both_ran;
  for (int i = 0; i < 2; ++i) {
    executor.Submit([&](const Status& admitted) {
      EXPECT_TRUE(admitted.ok());
      if (++ran == 2) both_ran.set_value();
    });
  }
  EXPECT_EQ(executor.queued(), 2u);
  Status refused;
  std::thread::id refused_on;
  executor.Submit([&](const Status& admitted) {
    refused = admitted;
    refused_on = std::this_thread::get_id();
  });
  EXPECT_EQ(refused.code(), Status::Code::kUnavailable);
  EXPECT_NE(refused.message().find("retry later"), std::string::npos);
  EXPECT_EQ(refused_on, std::this_thread::get_id());
  gate.open.set_value();
  both_ran.get_future().wait();  // Join would refuse what still waits
  EXPECT_EQ(ran.load(), 2);
}

// Close answers what waits with Unavailable and lets the running action
// finish; later submissions are refused.
TEST(AdminExecutorTest, CloseCancelsQueuedAndFinishesTheRunningOne) {
  AdminExecutor executor(8);
  Gate gate;
  std::atomic<bool> running_finished{false};
  executor.Submit([&](const Status& admitted) {
    EXPECT_TRUE(admitted.ok());
    gate.entered.set_value();
    gate.opened.wait();
    running_finished = true;
  });
  gate.entered.get_future().wait();
  std::atomic<int> cancelled{0};
  for (int i = 0; i < 3; ++i) {
    executor.Submit([&](const Status& admitted) {
      EXPECT_EQ(admitted.code(), Status::Code::kUnavailable);
      ++cancelled;
    });
  }
  std::thread opener([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    gate.open.set_value();
  });
  executor.Close();
  EXPECT_EQ(cancelled.load(), 3);
  Status late;
  executor.Submit([&](const Status& admitted) { late = admitted; });
  EXPECT_EQ(late.code(), Status::Code::kUnavailable);
  executor.Join();
  EXPECT_TRUE(running_finished.load());
  opener.join();
  executor.Join();  // idempotent
}

// Many submitters at once: every task runs exactly once, admitted or not.
TEST(AdminExecutorTest, ConcurrentSubmitsEachAnsweredOnce) {
  std::atomic<int> admitted{0};
  std::atomic<int> refused{0};
  {
    AdminExecutor executor(4);
    std::vector<std::thread> submitters;
    for (int t = 0; t < 4; ++t) {
      submitters.emplace_back([&] {
        for (int i = 0; i < 200; ++i) {
          executor.Submit([&](const Status& s) { ++(s.ok() ? admitted : refused); });
        }
      });
    }
    for (auto& t : submitters) t.join();
  }  // the destructor closes: what still waits is refused
  EXPECT_EQ(admitted.load() + refused.load(), 800);
}

}  // namespace
}  // namespace berth
