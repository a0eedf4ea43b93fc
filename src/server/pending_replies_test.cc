#include "server/pending_replies.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace berth {
namespace {

using namespace std::chrono_literals;

// Records who answered; a second answer is the defect these tests look for.
struct Request {
  std::atomic<int> answers{0};
  std::atomic<bool> cancelled{false};
};

using Replies = PendingReplies<Request*>;

TEST(PendingRepliesTest, TheCoreAnswersWhatIsNotCancelled) {
  Replies replies;
  Request r;
  auto slot = replies.Add(&r);
  ASSERT_NE(slot, nullptr);
  EXPECT_FALSE(replies.WaitUntilEmpty(std::chrono::steady_clock::now()));
  EXPECT_TRUE(slot->Answer([](Request* q) { ++q->answers; }));
  EXPECT_FALSE(slot->Answer([](Request* q) { ++q->answers; }));  // only once
  EXPECT_TRUE(replies.WaitUntilEmpty(std::chrono::steady_clock::now()));
  EXPECT_EQ(replies.CancelAll([](Request* q) { ++q->answers; }), 0u);
  EXPECT_EQ(r.answers.load(), 1);
}

TEST(PendingRepliesTest, CancelAllAnswersWhatIsPendingAndDropsLaterAnswers) {
  auto replies = std::make_unique<Replies>();
  Request a, b;
  auto slot_a = replies->Add(&a);
  auto slot_b = replies->Add(&b);
  EXPECT_TRUE(slot_a->Answer([](Request* q) { ++q->answers; }));
  EXPECT_EQ(replies->CancelAll([](Request* q) {
    ++q->answers;
    q->cancelled = true;
  }), 1u);
  EXPECT_TRUE(b.cancelled.load());
  // Registration is closed: the caller answers by itself.
  Request c;
  EXPECT_EQ(replies->Add(&c), nullptr);
  // A completion after the owner is gone touches nothing of it.
  replies.reset();
  EXPECT_FALSE(slot_b->Answer([](Request* q) { ++q->answers; }));
  EXPECT_EQ(a.answers.load(), 1);
  EXPECT_EQ(b.answers.load(), 1);
}

// The core's reference to a target (an HTTP session) may be the last one,
// and destroying a session touches its front end. So it is dropped while the
// slot still counts as pending: a shutdown waiting for the list to empty
// cannot tear the front end down under it (a use-after-free ASan caught at
// shutdown, from a batcher thread).
TEST(PendingRepliesTest, TheTargetIsReleasedBeforeTheSlotLeavesThePendingList) {
  PendingReplies<std::shared_ptr<int>> replies;
  bool pending_at_release = false;
  struct Release {
    PendingReplies<std::shared_ptr<int>>* replies;
    bool* pending;
    void operator()(int* p) const {
      *pending = !replies->WaitUntilEmpty(std::chrono::steady_clock::now());
      delete p;
    }
  };
  auto slot = replies.Add(std::shared_ptr<int>(new int(7), Release{&replies, &pending_at_release}));
  ASSERT_NE(slot, nullptr);
  EXPECT_TRUE(slot->Answer([](const std::shared_ptr<int>& target) { EXPECT_EQ(*target, 7); }));
  EXPECT_TRUE(pending_at_release);
  EXPECT_TRUE(replies.WaitUntilEmpty(std::chrono::steady_clock::now()));
}

TEST(PendingRepliesTest, WaitUntilEmptyWakesWhenTheLastIsAnswered) {
  Replies replies;
  Request r;
  auto slot = replies.Add(&r);
  std::thread core([&] {
    std::this_thread::sleep_for(10ms);
    slot->Answer([](Request* q) { ++q->answers; });
  });
  EXPECT_TRUE(replies.WaitUntilEmpty(std::chrono::steady_clock::now() + 60s));
  core.join();
  replies.CancelAll([](Request*) {});
}

// The core's completions race CancelAll: each request is answered exactly
// once, by one or the other.
TEST(PendingRepliesTest, ConcurrentAnswersAndCancelAnswerEachRequestOnce) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 500;
  std::vector<Request> requests(kThreads * kPerThread);
  Replies replies;
  std::vector<std::vector<std::shared_ptr<Replies::Slot>>> slots(kThreads);
  std::atomic<int> refused{0};
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      slots[t].push_back(replies.Add(&requests[static_cast<size_t>(t * kPerThread + i)]));
    }
  }
  std::vector<std::thread> core;
  for (int t = 0; t < kThreads; ++t) {
    core.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        slots[t][i]->Answer([](Request* q) { ++q->answers; });
        // Late registrations race the cancellation too.
        Request late;
        if (auto s = replies.Add(&late)) {
          s->Answer([](Request* q) { ++q->answers; });
        } else {
          ++refused;
        }
      }
    });
  }
  replies.CancelAll([](Request* q) {
    ++q->answers;
    q->cancelled = true;
  });
  for (auto& t : core) t.join();
  for (const Request& r : requests) EXPECT_EQ(r.answers.load(), 1);
}

}  // namespace
}  // namespace berth
