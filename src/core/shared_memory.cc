#include "core/shared_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace berth {

// The mapping of one registered window, and the object's descriptor, kept
// open so that each use can check the object has not shrunk under it (a
// mapped page past the object's end raises SIGBUS when touched).
class SharedMemoryMapping {
 public:
  SharedMemoryMapping(int fd, void* base, size_t length, size_t skew, uint64_t end)
      : fd_(fd), base_(base), length_(length), skew_(skew), end_(end) {}
  ~SharedMemoryMapping() {
    munmap(base_, length_);
    close(fd_);
  }
  SharedMemoryMapping(const SharedMemoryMapping&) = delete;
  SharedMemoryMapping& operator=(const SharedMemoryMapping&) = delete;

  // The first byte of the registered window.
  std::byte* data() const { return static_cast<std::byte*>(base_) + skew_; }

  // Whether the object still spans the registered window.
  bool Intact() const {
    struct stat st {};
    return fstat(fd_, &st) == 0 && static_cast<uint64_t>(st.st_size) >= end_;
  }

 private:
  const int fd_;
  void* const base_;
  const size_t length_;
  const size_t skew_;   // from the page boundary mmap needs to the window
  const uint64_t end_;  // the window's end within the object
};

namespace {

Status CheckKey(const std::string& key) {
  // shm_open's rule (one leading '/', none after) plus NAME_MAX; a NUL would
  // cut the name short.
  std::string_view k(key);
  if (k.starts_with('/')) k.remove_prefix(1);
  if (k.empty() || k.size() > 255 || k == "." || k == ".." ||
      k.find_first_of(std::string_view("/\0", 2)) != std::string_view::npos) {
    return Status::InvalidArgument("shared memory key '" + key +
                                   "' is not a valid POSIX shared memory name ('/name', at "
                                   "most 255 bytes, no other '/')");
  }
  return Status::Ok();
}

Status CheckName(const std::string& name) {
  if (name.empty() || name.size() > 255 || name.find('\0') != std::string::npos) {
    return Status::InvalidArgument("a shared memory region needs a name of 1 to 255 bytes");
  }
  return Status::Ok();
}

}  // namespace

SharedMemoryRegistry::SharedMemoryRegistry() = default;
SharedMemoryRegistry::~SharedMemoryRegistry() = default;

Status SharedMemoryRegistry::Register(const std::string& name, const std::string& key,
                                      uint64_t offset, uint64_t byte_size) {
  RETURN_IF_ERROR(CheckName(name));
  RETURN_IF_ERROR(CheckKey(key));
  const std::string what = "failed to register shared memory region '" + name + "'";
  if (byte_size == 0) return Status::InvalidArgument(what + ": byte_size must be positive");
  if (offset > UINT64_MAX - byte_size || offset + byte_size > static_cast<uint64_t>(INT64_MAX) ||
      byte_size > SIZE_MAX / 2) {
    return Status::InvalidArgument(what + ": offset + byte_size overflows");
  }
  {
    std::lock_guard lock(mu_);
    if (regions_.count(name)) {
      return Status::AlreadyExists("shared memory region '" + name + "' already in manager");
    }
  }
  // The descriptor is closed by the mapping, or here on failure.
  const int fd = shm_open(key.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) {
    const int err = errno;
    const std::string detail = " (" + std::string(std::strerror(err)) + ")";
    if (err == ENOENT) {
      return Status::NotFound("Unable to open shared memory region: '" + key + "'" + detail);
    }
    return Status::InvalidArgument("Unable to open shared memory region: '" + key + "'" + detail);
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return Status::InvalidArgument(what + ": key '" + key + "' is not a shared memory object");
  }
  if (static_cast<uint64_t>(st.st_size) < offset + byte_size) {
    close(fd);
    return Status::InvalidArgument(what + ": offset " + std::to_string(offset) + " + byte_size " +
                                   std::to_string(byte_size) + " runs past the end of '" + key +
                                   "' (" + std::to_string(st.st_size) + " bytes)");
  }
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uint64_t aligned = offset - offset % page;
  const size_t skew = static_cast<size_t>(offset - aligned);
  const size_t length = skew + static_cast<size_t>(byte_size);
  void* base = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                    static_cast<off_t>(aligned));
  if (base == MAP_FAILED) {
    const int err = errno;
    close(fd);
    return Status::InvalidArgument(what + ": cannot map '" + key + "' (" + std::strerror(err) +
                                   ")");
  }
  auto mapping =
      std::make_shared<const SharedMemoryMapping>(fd, base, length, skew, offset + byte_size);
  std::lock_guard lock(mu_);
  // Checked again: another registration of the name may have won meanwhile.
  if (regions_.count(name)) {
    return Status::AlreadyExists("shared memory region '" + name + "' already in manager");
  }
  regions_.emplace(name, Region{{name, key, offset, byte_size}, std::move(mapping)});
  return Status::Ok();
}

void SharedMemoryRegistry::Unregister(const std::string& name) {
  std::shared_ptr<const SharedMemoryMapping> last;  // unmapped outside the lock
  std::lock_guard lock(mu_);
  auto it = regions_.find(name);
  if (it == regions_.end()) return;
  last = std::move(it->second.mapping);
  regions_.erase(it);
}

size_t SharedMemoryRegistry::UnregisterAll() {
  std::map<std::string, Region> gone;  // unmapped outside the lock
  std::lock_guard lock(mu_);
  gone.swap(regions_);
  return gone.size();
}

StatusOr<std::vector<SharedMemoryRegionInfo>> SharedMemoryRegistry::Describe(
    const std::string& name) const {
  std::vector<SharedMemoryRegionInfo> out;
  std::lock_guard lock(mu_);
  if (name.empty()) {
    for (const auto& [n, r] : regions_) out.push_back(r.info);
    return out;
  }
  auto it = regions_.find(name);
  if (it == regions_.end()) {
    return Status::NotFound("Unable to find system shared memory region: '" + name + "'");
  }
  out.push_back(it->second.info);
  return out;
}

StatusOr<SharedMemoryWindow> SharedMemoryRegistry::Window(const std::string& name,
                                                          uint64_t offset,
                                                          uint64_t byte_size) const {
  SharedMemoryRegionInfo info;
  std::shared_ptr<const SharedMemoryMapping> mapping;
  {
    std::lock_guard lock(mu_);
    auto it = regions_.find(name);
    if (it == regions_.end()) {
      return Status::NotFound("Unable to find shared memory region: '" + name + "'");
    }
    info = it->second.info;
    mapping = it->second.mapping;
  }
  if (offset > info.byte_size || byte_size > info.byte_size - offset) {
    return Status::InvalidArgument("Invalid offset + byte size for shared memory region: '" +
                                   name + "' (offset " + std::to_string(offset) +
                                   " + byte size " + std::to_string(byte_size) +
                                   " is past its registered size of " +
                                   std::to_string(info.byte_size) + " bytes)");
  }
  if (!mapping->Intact()) {
    return Status::InvalidArgument("shared memory region '" + name + "': the object '" +
                                   info.key + "' no longer spans the registered window");
  }
  std::byte* data = mapping->data() + offset;
  return SharedMemoryWindow(std::move(mapping), data, static_cast<size_t>(byte_size));
}

SharedMemoryRegistry::Totals SharedMemoryRegistry::totals() const {
  Totals t;
  std::lock_guard lock(mu_);
  for (const auto& [n, r] : regions_) {
    ++t.regions;
    t.bytes += r.info.byte_size;
  }
  return t;
}

}  // namespace berth
