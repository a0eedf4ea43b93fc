// The system shared-memory extension's region table (Triton's
// extension_shared_memory): a co-located client registers a window of a
// POSIX shared-memory object under a name, then names it in an inference
// request's input or output parameters instead of sending the tensor's bytes.
//
// The table maps each registered window once, at registration, and hands a
// request a SharedMemoryWindow that keeps the mapping alive: a region
// unregistered while a request uses it is unmapped when that request
// finishes, never under it. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/thread_annotations.h"

namespace berth {

// What a region was registered with, as the status routes report it.
struct SharedMemoryRegionInfo {
  std::string name;
  std::string key;
  uint64_t offset = 0;
  uint64_t byte_size = 0;
};

class SharedMemoryMapping;  // one mmap of a registered window (shared_memory.cc)

// `size` bytes of a registered region starting `offset` bytes into it, valid
// while this object (or a copy) lives. Empty (size 0) by default.
class SharedMemoryWindow {
 public:
  SharedMemoryWindow() = default;
  SharedMemoryWindow(std::shared_ptr<const SharedMemoryMapping> mapping, std::byte* data,
                     size_t size)
      : mapping_(std::move(mapping)), data_(data), size_(size) {}

  // The client may write the same memory at any time: readers copy what they
  // check before relying on it.
  std::span<std::byte> bytes() const { return {data_, size_}; }

 private:
  std::shared_ptr<const SharedMemoryMapping> mapping_;
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

class SharedMemoryRegistry {
 public:
  SharedMemoryRegistry();
  ~SharedMemoryRegistry();
  SharedMemoryRegistry(const SharedMemoryRegistry&) = delete;
  SharedMemoryRegistry& operator=(const SharedMemoryRegistry&) = delete;

  // Opens the shared-memory object `key` (shm_open, read/write) and maps
  // `byte_size` bytes from `offset`. InvalidArgument for an empty or
  // malformed name or key ("/name": no other '/', at most 255 bytes), a zero
  // byte_size, or a window that does not lie inside the object;
  // NotFound if no object has that key; AlreadyExists if `name` is registered.
  Status Register(const std::string& name, const std::string& key, uint64_t offset,
                  uint64_t byte_size);
  // Takes `name` out of the table (a request still using it keeps its
  // window). As Triton: a name that is not registered is not an error.
  void Unregister(const std::string& name);
  // Takes every region out of the table; returns how many there were.
  size_t UnregisterAll();

  // Every region (empty `name`), or the one named; NotFound if it is not
  // registered.
  StatusOr<std::vector<SharedMemoryRegionInfo>> Describe(const std::string& name) const;

  // `byte_size` bytes from `offset` within the registered region `name`.
  // NotFound for an unknown region; InvalidArgument if the window runs past
  // the registered byte size, or the object has shrunk since it was
  // registered (its size is checked again on every use).
  StatusOr<SharedMemoryWindow> Window(const std::string& name, uint64_t offset,
                                      uint64_t byte_size) const;

  // The regions registered and the bytes they span, for /metrics.
  struct Totals {
    uint64_t regions = 0;
    uint64_t bytes = 0;
  };
  Totals totals() const;

 private:
  struct Region {
    SharedMemoryRegionInfo info;
    std::shared_ptr<const SharedMemoryMapping> mapping;
  };

  mutable std::mutex mu_;
  std::map<std::string, Region> regions_ GUARDED_BY(mu_);
};

}  // namespace berth
