#include "core/memory_budget.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include <malloc.h>
#include <string_view>

#include "core/byte_size.h"

namespace berth {

struct MemoryBudget::Account {
  std::mutex mu;
  uint64_t reserved GUARDED_BY(mu) = 0;
  int versions GUARDED_BY(mu) = 0;
};

MemoryBudget::MemoryBudget(uint64_t budget_bytes, double factor)
    : budget_(budget_bytes), factor_(factor), account_(std::make_shared<Account>()) {}

uint64_t MemoryBudget::Need(const std::string& key, uint64_t artifact_bytes) const {
  {
    std::lock_guard lock(mu_);
    auto it = measured_.find(key);
    if (it != measured_.end()) return std::max(it->second, artifact_bytes);
  }
  const double estimate = std::ceil(static_cast<double>(artifact_bytes) * factor_);
  // 2^64 is the first double past UINT64_MAX.
  return estimate < 18446744073709551616.0 ? static_cast<uint64_t>(estimate) : UINT64_MAX;
}

StatusOr<std::unique_ptr<MemoryBudget::Reservation>> MemoryBudget::Reserve(
    const std::string& key, const std::string& what, uint64_t artifact_bytes) {
  const uint64_t need = Need(key, artifact_bytes);
  std::lock_guard lock(account_->mu);
  const uint64_t reserved = account_->reserved;
  const uint64_t free = budget_ > reserved ? budget_ - reserved : 0;
  if (budget_ > 0 && need > free) {
    bool measured = false;
    {
      std::lock_guard measured_lock(mu_);
      measured = measured_.count(key) > 0;
    }
    char factor[32];
    std::snprintf(factor, sizeof(factor), "%g", factor_);
    return Status::ResourceExhausted(
        what + " needs " + HumanBytes(need) +
        (measured ? " (measured when it last loaded)"
                  : " (estimated: its " + HumanBytes(artifact_bytes) + " artifact x " + factor +
                        ")") +
        " but only " + HumanBytes(free) + " of the " + HumanBytes(budget_) +
        " memory budget is free (" + HumanBytes(reserved) + " held by " +
        std::to_string(account_->versions) + " loaded version" +
        (account_->versions == 1 ? "" : "s") + "); it was not loaded");
  }
  account_->reserved += need;
  ++account_->versions;
  return std::make_unique<Reservation>(account_, need);
}

void MemoryBudget::RecordMeasured(const std::string& key, uint64_t artifact_bytes,
                                  uint64_t measured, Reservation* reservation) {
  uint64_t need = 0;
  {
    std::lock_guard lock(mu_);
    uint64_t& kept = measured_[key];
    kept = std::max(kept, measured);
    need = std::max(kept, artifact_bytes);
  }
  if (reservation != nullptr) reservation->Resize(need);
}

uint64_t MemoryBudget::reserved() const {
  std::lock_guard lock(account_->mu);
  return account_->reserved;
}

MemoryBudget::Reservation::Reservation(std::shared_ptr<Account> account, uint64_t bytes)
    : account_(std::move(account)), bytes_(bytes) {}

MemoryBudget::Reservation::~Reservation() {
  {
    std::lock_guard lock(account_->mu);
    account_->reserved -= bytes_;
    --account_->versions;
  }
  // The version's session is gone (the Model destroys its backend first).
  // glibc keeps what it freed in its arenas, most of it in the per-thread
  // arenas ONNX Runtime's threads allocated from; without handing it back,
  // resident memory ratchets up with every load and unload (measured in
  // docs/benchmarks.md). Unloads are rare, and a trim costs well under a
  // millisecond at Berth's heap sizes.
  malloc_trim(0);
}

uint64_t MemoryBudget::Reservation::bytes() const {
  std::lock_guard lock(account_->mu);
  return bytes_;
}

void MemoryBudget::Reservation::Resize(uint64_t bytes) {
  std::lock_guard lock(account_->mu);
  account_->reserved = account_->reserved - bytes_ + bytes;
  bytes_ = bytes;
}

uint64_t ResidentBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with("RssAnon:")) continue;
    uint64_t kib = 0;
    for (char c : std::string_view(line).substr(8)) {
      if (c >= '0' && c <= '9') kib = kib * 10 + static_cast<uint64_t>(c - '0');
    }
    return kib * 1024;
  }
  return 0;
}

}  // namespace berth
