#include "core/request_id.h"

#include <cstdint>
#include <random>

namespace berth {
namespace {

// SplitMix64: two multiplications a draw, statistically sound for ids (they
// need to be unique, not unpredictable; nothing is authorized by one).
uint64_t Next(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

std::string NewRequestId() {
  thread_local uint64_t state = [] {
    std::random_device device;
    return (static_cast<uint64_t>(device()) << 32) ^ device();
  }();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (int half = 0; half < 2; ++half) {
    uint64_t bits = Next(&state);
    for (int i = 0; i < 16; ++i, bits >>= 4)
      id[static_cast<size_t>(half * 16 + i)] = kHex[bits & 15];
  }
  return id;
}

bool IsUsableRequestId(std::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdBytes) return false;
  for (char c : id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace berth
