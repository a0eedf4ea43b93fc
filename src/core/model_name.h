// Model names: the one check every door applies before a name reaches the
// model table or a file system path.
//
// A name arrives from a URL, a gRPC field, a flag or a directory listing, and
// is hostile until checked: it may be too long for the file system, carry a
// NUL that truncates the path the kernel sees, control characters that forge
// log lines, bytes that are not UTF-8 (and would make an error's JSON
// invalid), or path syntax that leaves the repository.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/status.h"

namespace berth {

// The longest accepted name, in bytes: below every file system's NAME_MAX
// (255), with room for the suffixes the registry adds.
inline constexpr size_t kMaxModelNameBytes = 200;

// OK iff `name` is 1..kMaxModelNameBytes bytes of valid UTF-8 with no
// control characters (U+0000-U+001F, U+007F), no '/' or '\', and does not
// start with '.'. Otherwise InvalidArgument saying which rule failed; the
// message quotes the name only in a printable, shortened form.
Status ValidateModelName(std::string_view name);

// True iff `text` is valid UTF-8 (no overlong forms, surrogates or code
// points past U+10FFFF).
bool IsValidUtf8(std::string_view text);

// `text` made safe to quote in a message or a log line: invalid UTF-8 and
// control characters become '?', and it is cut to `max_bytes` (+ "...").
std::string PrintableExcerpt(std::string_view text, size_t max_bytes = 64);

}  // namespace berth
