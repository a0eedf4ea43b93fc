// PendingReplies: the answers a front end owes for requests out in the core.
//
// A front end hands a request to the core and answers it from whatever thread
// the core completes it on. At shutdown the front end cannot wait for the
// core forever: once its grace period is over it answers the requests still
// out itself (503 / UNAVAILABLE) and tears its network layer down, while the
// core may still complete them later. This class decides, per request, which
// of the two answers: the first to claim the request's Slot does, the other
// does nothing. So the answer is sent exactly once, and after CancelAll()
// returns no completion touches the front end or its network layer.
//
// `Target` is what an answer needs (an HTTP session, a gRPC call); a Slot
// holds it until the answer is claimed. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "core/thread_annotations.h"

namespace berth {

template <typename Target>
class PendingReplies {
 public:
  // One request's claim to be answered. Shared by the front end's completion
  // callback and the PendingReplies it was added to; outlives the latter.
  class Slot {
   public:
    // Calls `answer(Target&)` unless the request has been answered already
    // (cancelled), and returns whether it did. `answer` runs under the slot's
    // lock, so it must only start the send (post to a strand, start a
    // gRPC Finish), not block; while it runs, the front end cannot finish
    // CancelAll() and so its network layer is still there.
    template <typename F>
    bool Answer(F&& answer) LOCKS_EXCLUDED(mu_) {
      std::lock_guard lock(mu_);
      if (!target_.has_value()) return false;
      Target target = std::move(*target_);
      target_.reset();
      answer(target);
      // This reference goes before the slot leaves its owner's list: the
      // last one to a target (an HTTP session) may destroy it, and that
      // touches the front end, which a shutdown only tears down once the
      // list is empty or CancelAll() has passed every slot on it.
      target = Target();
      // The owner is alive: it cannot have passed this slot in CancelAll().
      owner_->Remove(position_);
      return true;
    }

   private:
    friend class PendingReplies;
    explicit Slot(Target target) : target_(std::move(target)) {}

    std::mutex mu_;
    std::optional<Target> target_ GUARDED_BY(mu_);  // empty once answered
    // Set by Add() before the slot is shared; used only while target_ is set.
    PendingReplies* owner_ = nullptr;
    typename std::list<std::shared_ptr<Slot>>::iterator position_;
  };

  PendingReplies() = default;
  // Precondition: CancelAll() has returned, or nothing was ever added.
  ~PendingReplies() = default;
  PendingReplies(const PendingReplies&) = delete;
  PendingReplies& operator=(const PendingReplies&) = delete;

  // Registers a request about to go to the core. Null once CancelAll() has
  // started: the caller then answers the request itself, without the core.
  std::shared_ptr<Slot> Add(Target target) LOCKS_EXCLUDED(mu_) {
    std::shared_ptr<Slot> slot(new Slot(std::move(target)));
    std::lock_guard lock(mu_);
    if (closed_) return nullptr;
    slot->owner_ = this;
    slot->position_ = slots_.insert(slots_.end(), slot);
    return slot;
  }

  // Waits until no request is pending or `deadline` passes; true if none is.
  bool WaitUntilEmpty(std::chrono::steady_clock::time_point deadline) LOCKS_EXCLUDED(mu_) {
    std::unique_lock lock(mu_);
    return empty_.wait_until(lock, deadline, [this] { return slots_.empty(); });
  }

  // Refuses every later Add() and answers each request still pending with
  // `cancel(Target&)` (under its slot's lock, as Slot::Answer). Returns how
  // many it answered. Afterwards every Slot::Answer() returns false.
  template <typename F>
  size_t CancelAll(F&& cancel) LOCKS_EXCLUDED(mu_) {
    std::list<std::shared_ptr<Slot>> pending;
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      pending.swap(slots_);
    }
    // Not under mu_: Slot::Answer takes the slot's lock, then mu_.
    size_t cancelled = 0;
    for (const auto& slot : pending) {
      std::lock_guard lock(slot->mu_);
      if (!slot->target_.has_value()) continue;  // answered meanwhile
      Target target = std::move(*slot->target_);
      slot->target_.reset();
      cancel(target);
      ++cancelled;
    }
    return cancelled;
  }

 private:
  void Remove(typename std::list<std::shared_ptr<Slot>>::iterator position) LOCKS_EXCLUDED(mu_) {
    std::lock_guard lock(mu_);
    // After CancelAll() took the list, the slot is no longer in slots_.
    if (closed_) return;
    slots_.erase(position);
    if (slots_.empty()) empty_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable empty_;
  std::list<std::shared_ptr<Slot>> slots_ GUARDED_BY(mu_);
  bool closed_ GUARDED_BY(mu_) = false;
};

}  // namespace berth
