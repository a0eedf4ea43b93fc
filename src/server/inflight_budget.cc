#include "server/inflight_budget.h"

#include <utility>

namespace berth {

InflightBudget::InflightBudget(uint64_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

std::optional<InflightBudget::Reservation> InflightBudget::TryReserve(uint64_t bytes) {
  if (!TryTake(bytes)) return std::nullopt;
  return Reservation(this, bytes);
}

bool InflightBudget::TryTake(uint64_t bytes) {
  uint64_t current = reserved_.load(std::memory_order_relaxed);
  do {
    // Written as a subtraction so that a huge `bytes` cannot wrap around.
    if (bytes > capacity_ - current) return false;
  } while (!reserved_.compare_exchange_weak(current, current + bytes, std::memory_order_relaxed));
  return true;
}

void InflightBudget::Give(uint64_t bytes) { reserved_.fetch_sub(bytes, std::memory_order_relaxed); }

InflightBudget::Reservation::Reservation(Reservation&& other) noexcept
    : budget_(std::exchange(other.budget_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

InflightBudget::Reservation& InflightBudget::Reservation::operator=(Reservation&& other) noexcept {
  if (this != &other) {
    Release();
    budget_ = std::exchange(other.budget_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

bool InflightBudget::Reservation::TryGrow(uint64_t bytes) {
  if (budget_ == nullptr || !budget_->TryTake(bytes)) return false;
  bytes_ += bytes;
  return true;
}

void InflightBudget::Reservation::Release() {
  if (budget_ != nullptr && bytes_ > 0) budget_->Give(bytes_);
  bytes_ = 0;
}

}  // namespace berth
