#include "core/shared_memory.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "core/shared_memory_io.h"

namespace berth {
namespace {

// A POSIX shared-memory object of `size` bytes, removed when the test ends.
class ShmObject {
 public:
  explicit ShmObject(size_t size)
      : key_("/berth_shm_test_" + std::to_string(getpid()) + "_" + std::to_string(next_++)) {
    const int fd = shm_open(key_.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(ftruncate(fd, static_cast<off_t>(size)), 0);
    close(fd);
  }
  ~ShmObject() { shm_unlink(key_.c_str()); }
  const std::string& key() const { return key_; }
  void Truncate(size_t size) const {
    const int fd = shm_open(key_.c_str(), O_RDWR, 0);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, static_cast<off_t>(size)), 0);
    close(fd);
  }

 private:
  static inline std::atomic<int> next_{0};
  std::string key_;
};

TEST(SharedMemoryRegistryTest, RegisterDescribeUnregister) {
  ShmObject obj(8192);
  SharedMemoryRegistry r;
  ASSERT_TRUE(r.Register("r0", obj.key(), 4100, 64).ok());
  auto all = r.Describe("");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].key, obj.key());
  EXPECT_EQ((*all)[0].offset, 4100u);
  EXPECT_EQ((*all)[0].byte_size, 64u);
  EXPECT_EQ(r.totals().regions, 1u);
  EXPECT_EQ(r.totals().bytes, 64u);
  EXPECT_EQ(r.Register("r0", obj.key(), 0, 4).code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(r.Describe("nope").status().code(), Status::Code::kNotFound);
  r.Unregister("r0");
  r.Unregister("r0");  // as Triton: not an error
  EXPECT_EQ(r.totals().regions, 0u);
  EXPECT_EQ(r.Describe("r0").status().code(), Status::Code::kNotFound);
}

TEST(SharedMemoryRegistryTest, RefusesBadKeysAndWindows) {
  ShmObject obj(100);
  SharedMemoryRegistry r;
  EXPECT_EQ(r.Register("r", "/berth_no_such_object_xyz", 0, 4).code(),
            Status::Code::kNotFound);
  for (const char* key : {"", "/", "/a/b", "/..", "../etc/passwd"}) {
    EXPECT_EQ(r.Register("r", key, 0, 4).code(), Status::Code::kInvalidArgument) << key;
  }
  EXPECT_EQ(r.Register("", obj.key(), 0, 4).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(r.Register("r", obj.key(), 0, 0).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(r.Register("r", obj.key(), 0, 101).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(r.Register("r", obj.key(), 100, 1).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(r.Register("r", obj.key(), UINT64_MAX, 2).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(r.totals().regions, 0u);

  ASSERT_TRUE(r.Register("r", obj.key(), 10, 80).ok());
  EXPECT_TRUE(r.Window("r", 0, 80).ok());
  EXPECT_TRUE(r.Window("r", 79, 1).ok());
  EXPECT_EQ(r.Window("r", 80, 1).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(r.Window("r", 1, 80).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(r.Window("r", UINT64_MAX, 2).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(r.Window("x", 0, 1).status().code(), Status::Code::kNotFound);
  // An object shrunk under its registration is refused, not touched (SIGBUS).
  obj.Truncate(50);
  EXPECT_EQ(r.Window("r", 0, 4).status().code(), Status::Code::kInvalidArgument);
}

// Whether this process maps the shared-memory object `key`.
bool Mapped(const std::string& key) {
  std::ifstream maps("/proc/self/maps");
  std::stringstream text;
  text << maps.rdbuf();
  return text.str().find("/dev/shm" + key) != std::string::npos;
}

TEST(SharedMemoryRegistryTest, UnregisterAllUnmapsEveryRegionAndCountsThem) {
  ShmObject a(64), b(8192);
  SharedMemoryRegistry r;
  ASSERT_TRUE(r.Register("a", a.key(), 0, 64).ok());
  ASSERT_TRUE(r.Register("b", b.key(), 4096, 100).ok());
  EXPECT_TRUE(Mapped(a.key()));
  EXPECT_TRUE(Mapped(b.key()));
  EXPECT_EQ(r.UnregisterAll(), 2u);
  EXPECT_FALSE(Mapped(a.key()));
  EXPECT_FALSE(Mapped(b.key()));
  EXPECT_EQ(r.UnregisterAll(), 0u);
}

TEST(SharedMemoryRegistryTest, WindowSeesTheClientsBytesAndOutlivesUnregister) {
  ShmObject obj(64);
  SharedMemoryRegistry r;
  ASSERT_TRUE(r.Register("r", obj.key(), 16, 16).ok());
  auto w = r.Window("r", 4, 8);
  ASSERT_TRUE(w.ok());
  r.UnregisterAll();
  // Still mapped: the window holds the mapping.
  std::memcpy(w->bytes().data(), "abcdefgh", 8);
  const int fd = shm_open(obj.key().c_str(), O_RDONLY, 0);
  ASSERT_GE(fd, 0);
  char buf[8];
  ASSERT_EQ(pread(fd, buf, 8, 20), 8);
  close(fd);
  EXPECT_EQ(std::string(buf, 8), "abcdefgh");
}

TEST(SharedMemoryIoTest, ReadsInputsAndWritesOutputs) {
  ShmObject obj(64);
  SharedMemoryRegistry r;
  ASSERT_TRUE(r.Register("r", obj.key(), 0, 64).ok());
  auto all = r.Window("r", 0, 64);
  ASSERT_TRUE(all.ok());
  const float in[2] = {1.5f, -2.0f};
  std::memcpy(all->bytes().data(), in, sizeof(in));

  InferenceRequest request;
  request.inputs.emplace_back("x", DataType::kFp32, std::vector<int64_t>{2});
  request.shared_memory_inputs["x"] = {"r", 0, 8};
  RequestedOutput out;
  out.name = "y";
  out.parameters = {{kSharedMemoryRegion, std::string("r")},
                    {kSharedMemoryByteSize, int64_t{8}},
                    {kSharedMemoryOffset, int64_t{32}}};
  request.outputs.push_back(out);
  ASSERT_TRUE(UsesSharedMemory(request));
  auto io = SharedMemoryIo::Prepare(&r, &request);
  ASSERT_TRUE(io.ok()) << io.status().ToString();
  ASSERT_EQ(request.inputs[0].bytes().size(), 8u);
  EXPECT_EQ(request.inputs[0].data<float>()[1], -2.0f);

  InferenceResponse response;
  response.outputs.emplace_back("y", DataType::kFp32, std::vector<int64_t>{2});
  ASSERT_TRUE(response.outputs[0].Allocate().ok());
  response.outputs[0].data<float>()[0] = 7.0f;
  ASSERT_TRUE((*io)->WriteOutputs(&response).ok());
  EXPECT_TRUE(response.outputs[0].bytes().empty());
  EXPECT_EQ(response.shared_memory_outputs.at("y").byte_size, 8u);
  float got = 0;
  std::memcpy(&got, all->bytes().data() + 32, 4);
  EXPECT_EQ(got, 7.0f);

  // An output bigger than its window.
  InferenceResponse big;
  big.outputs.emplace_back("y", DataType::kFp32, std::vector<int64_t>{3});
  ASSERT_TRUE(big.outputs[0].Allocate().ok());
  Status s = (*io)->WriteOutputs(&big);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("should be at least 12 bytes"), std::string::npos) << s.message();

  // A size that does not match the input's shape; an unknown region.
  InferenceRequest wrong;
  wrong.inputs.emplace_back("x", DataType::kFp32, std::vector<int64_t>{3});
  wrong.shared_memory_inputs["x"] = {"r", 0, 8};
  EXPECT_EQ(SharedMemoryIo::Prepare(&r, &wrong).status().code(),
            Status::Code::kInvalidArgument);
  wrong.shared_memory_inputs["x"] = {"nope", 0, 12};
  EXPECT_EQ(SharedMemoryIo::Prepare(&r, &wrong).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(SharedMemoryIo::Prepare(nullptr, &wrong).status().code(),
            Status::Code::kUnavailable);
}

// Registration, unregistration and use from several threads at once (run
// under TSan by `make tsan`): a window taken before an unregister stays
// readable and writable.
TEST(SharedMemoryRegistryTest, ConcurrentRegisterUnregisterAndUse) {
  ShmObject obj(4096);
  SharedMemoryRegistry r;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      const std::string name = "r" + std::to_string(t);
      for (int i = 0; i < 200; ++i) {
        Status s = r.Register(name, obj.key(), 0, 4096);
        EXPECT_TRUE(s.ok() || s.code() == Status::Code::kAlreadyExists) << s.ToString();
        if (i % 3 == 0) r.UnregisterAll();
        r.Unregister(name);
      }
    });
  }
  for (int t = 0; t < 2; ++t) {
    // Each user its own bytes of the regions, as two requests' tensors are.
    threads.emplace_back([&, offset = 8 + 32 * t] {
      while (!stop.load()) {
        for (const char* name : {"r0", "r1"}) {
          auto w = r.Window(name, offset, 16);
          if (w.ok()) std::memset(w->bytes().data(), 1, w->bytes().size());
          (void)r.totals();
          (void)r.Describe("");
        }
      }
    });
  }
  threads[0].join();
  threads[1].join();
  stop = true;
  threads[2].join();
  threads[3].join();
  EXPECT_EQ(r.totals().regions, 0u);
}

}  // namespace
}  // namespace berth
