// Byte sizes as people write and read them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace berth {

// 512 B, 1.5 KiB, 12.0 MiB, ...
std::string HumanBytes(uint64_t bytes);

// A size as a flag takes it: a byte count, or a number with a K, M, G or T
// suffix (powers of 1024; "KiB" and "KB" read as "K", any case), e.g.
// "512M", "1.5G". InvalidArgument for anything else or a size over 2^64-1.
StatusOr<uint64_t> ParseByteSize(std::string_view text);

}  // namespace berth
