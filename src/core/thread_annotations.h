// Clang thread-safety annotations (checked with -Wthread-safety); no-ops
// elsewhere.
#pragma once

#if defined(__clang__)
#define BERTH_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define BERTH_THREAD_ANNOTATION(x)
#endif

#define GUARDED_BY(x) BERTH_THREAD_ANNOTATION(guarded_by(x))
#define EXCLUSIVE_LOCKS_REQUIRED(...) BERTH_THREAD_ANNOTATION(exclusive_locks_required(__VA_ARGS__))
#define LOCKS_EXCLUDED(...) BERTH_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
