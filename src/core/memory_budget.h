// MemoryBudget: the accounting behind `berth serve --memory-budget`. Before
// a version loads, the memory it needs is reserved here; a load that would
// not fit is refused with ResourceExhausted instead of growing the process
// until the kernel kills it. The reservation lives in the loaded Model and
// is returned when the Model is destroyed (its last request has finished).
//
// The need of a version is an estimate: its artifact's bytes times a factor
// (--memory-factor, default 2) until one load of it has been measured (the
// growth of the process's anonymous resident memory across the load and
// warm-up); then that
// measurement, never less than the artifact's bytes (the weights are
// resident whatever the allocator reuses).
//
// Thread-safety: every method is safe from any thread; a Reservation may be
// destroyed on any thread, after the MemoryBudget or before it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/status.h"
#include "core/thread_annotations.h"

namespace berth {

class MemoryBudget {
 public:
  class Reservation;

  // `budget_bytes` 0: no limit (loads are still accounted, for /metrics).
  // `factor` > 0.
  explicit MemoryBudget(uint64_t budget_bytes = 0, double factor = 2.0);
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  // What loading the version known as `key` (its model, number and artifact
  // size) is expected to need; see the file comment.
  uint64_t Need(const std::string& key, uint64_t artifact_bytes) const LOCKS_EXCLUDED(mu_);

  // Reserves Need() for loading `what` (e.g. "version 3 of model 'm'").
  // ResourceExhausted, naming the need, what is free and the budget, when it
  // does not fit next to what loaded versions hold.
  StatusOr<std::unique_ptr<Reservation>> Reserve(const std::string& key, const std::string& what,
                                                 uint64_t artifact_bytes) LOCKS_EXCLUDED(mu_);

  // Records that loading `key` grew the process by `measured` bytes, and
  // sets `reservation` (taken for that load) to the need this implies. The
  // largest measurement of a key is kept: a load that reused memory freed
  // earlier understates what the version holds.
  void RecordMeasured(const std::string& key, uint64_t artifact_bytes, uint64_t measured,
                      Reservation* reservation) LOCKS_EXCLUDED(mu_);

  uint64_t budget() const { return budget_; }
  uint64_t reserved() const;

 private:
  struct Account;
  const uint64_t budget_;
  const double factor_;
  const std::shared_ptr<Account> account_;
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> measured_ GUARDED_BY(mu_);
};

// Bytes reserved for one loaded version.
class MemoryBudget::Reservation {
 public:
  Reservation(std::shared_ptr<Account> account, uint64_t bytes);
  Reservation(const Reservation&) = delete;
  Reservation& operator=(const Reservation&) = delete;
  // Returns the bytes to the budget.
  ~Reservation();

  uint64_t bytes() const;

 private:
  friend class MemoryBudget;
  void Resize(uint64_t bytes);
  const std::shared_ptr<Account> account_;
  uint64_t bytes_;  // guarded by account_->mu
};

// The anonymous resident memory of this process (RssAnon in
// /proc/self/status: heap, arenas, stacks; not the pages of mapped files
// such as libonnxruntime.so's code, which the first load touches and every
// later one shares), in bytes; 0 when it cannot be read.
uint64_t ResidentBytes();


}  // namespace berth
