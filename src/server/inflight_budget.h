// InflightBudget: a process-wide cap on the bytes that requests in flight
// hold (bodies as read from the wire, and their decompressed forms), shared
// by every front end, so that many large requests at once are refused with
// 503/UNAVAILABLE instead of growing the process without bound.
//
// A front end takes a Reservation when it learns a request's size (HTTP: the
// declared Content-Length, each chunk of a chunked body, the decoded size of
// a compressed one) and keeps it until the response has been written.
//
// Thread-safety: InflightBudget is safe to use from any thread. A Reservation
// belongs to one request and is not safe to share between threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>

namespace berth {

class InflightBudget {
 public:
  class Reservation;

  // `capacity` bytes may be reserved at once; at least 1.
  explicit InflightBudget(uint64_t capacity);
  InflightBudget(const InflightBudget&) = delete;
  InflightBudget& operator=(const InflightBudget&) = delete;
  // Every Reservation must have been released (or destroyed) before.
  ~InflightBudget() = default;

  // A reservation of `bytes`, or nullopt if they do not fit next to what is
  // reserved now. Never blocks.
  std::optional<Reservation> TryReserve(uint64_t bytes);

  uint64_t capacity() const { return capacity_; }
  uint64_t reserved() const { return reserved_.load(std::memory_order_relaxed); }

 private:
  bool TryTake(uint64_t bytes);
  void Give(uint64_t bytes);

  const uint64_t capacity_;
  std::atomic<uint64_t> reserved_{0};
};

// Bytes held against one budget; returns them when destroyed or Released.
// A default-constructed Reservation holds nothing and belongs to no budget.
class InflightBudget::Reservation {
 public:
  Reservation() = default;
  Reservation(Reservation&& other) noexcept;
  Reservation& operator=(Reservation&& other) noexcept;
  Reservation(const Reservation&) = delete;
  Reservation& operator=(const Reservation&) = delete;
  ~Reservation() { Release(); }

  // Adds `bytes` to this reservation if they fit in the budget; false (and
  // the reservation unchanged) if not, or if it belongs to no budget.
  bool TryGrow(uint64_t bytes);
  // Returns every byte to the budget; the reservation then holds nothing
  // but still belongs to its budget (it may grow again).
  void Release();

  uint64_t bytes() const { return bytes_; }

 private:
  friend class InflightBudget;
  Reservation(InflightBudget* budget, uint64_t bytes) : budget_(budget), bytes_(bytes) {}

  InflightBudget* budget_ = nullptr;
  uint64_t bytes_ = 0;
};

}  // namespace berth
