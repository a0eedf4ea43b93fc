#pragma once

namespace berth {

inline constexpr const char* kBerthVersion = "0.1.0";

}  // namespace berth
