#include "server/grpc/grpc_connection_cap.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <thread>
#include <memory>
#include <vector>

namespace berth::rpc {
namespace {

// A connected pair of sockets: `server` stands for the descriptor gRPC
// accepted, `client` for the peer.
struct Pair {
  Pair() {
    std::array<int, 2> fds{};
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds.data()), 0);
    server = fds[0];
    client = fds[1];
  }
  ~Pair() {
    if (server >= 0) close(server);
    if (client >= 0) close(client);
  }
  Pair(const Pair&) = delete;
  Pair& operator=(const Pair&) = delete;
  // True if the client reads EOF at once: the server side was shut down.
  bool ClientSeesEof() const {
    char byte = 0;
    return recv(client, &byte, 1, MSG_DONTWAIT) == 0;
  }
  int server = -1;
  int client = -1;
};

// Longer than the cap's prune interval (100 ms).
constexpr auto kPastPruneInterval = std::chrono::milliseconds(250);

TEST(GrpcConnectionCapTest, ShutsDownConnectionsOverTheCapAndAdmitsOnceOneCloses) {
  GrpcConnectionCap::State cap(2);
  Pair a, b, c;
  EXPECT_TRUE(cap.Admit(a.server));
  EXPECT_TRUE(cap.Admit(b.server));
  EXPECT_FALSE(cap.Admit(c.server));
  EXPECT_TRUE(c.ClientSeesEof());
  EXPECT_FALSE(a.ClientSeesEof());
  EXPECT_EQ(cap.refused(), 1u);

  // gRPC closes a connection; the cap notices at its next check.
  close(a.server);
  a.server = -1;
  std::this_thread::sleep_for(kPastPruneInterval);
  Pair d;
  EXPECT_TRUE(cap.Admit(d.server));
  EXPECT_FALSE(d.ClientSeesEof());
  EXPECT_EQ(cap.refused(), 1u);
}

TEST(GrpcConnectionCapTest, ADescriptorNumberReusedForAnotherSocketIsNotCountedTwice) {
  GrpcConnectionCap::State cap(1);
  auto first = std::make_unique<Pair>();
  EXPECT_TRUE(cap.Admit(first->server));
  const int number = first->server;
  first.reset();  // closed by gRPC
  // POSIX hands out the lowest free number: the new pair takes it again.
  Pair second;
  const int reused = second.server == number ? second.server : second.client;
  ASSERT_EQ(reused, number);
  // Admitted at once, without waiting for a check: the number's old entry
  // is replaced, not counted beside it.
  EXPECT_TRUE(cap.Admit(reused));
  EXPECT_EQ(cap.refused(), 0u);
}

TEST(GrpcConnectionCapTest, ManyThreadsAdmitAtOnceAndNeverExceedTheCap) {
  constexpr int kCap = 16;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 16;
  GrpcConnectionCap::State cap(kCap);
  std::vector<std::vector<std::unique_ptr<Pair>>> pairs(kThreads);
  std::vector<int> admitted(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        pairs[t].push_back(std::make_unique<Pair>());
        if (cap.Admit(pairs[t].back()->server)) ++admitted[t];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  int total = 0;
  for (int n : admitted) total += n;
  EXPECT_EQ(total, kCap);
  EXPECT_EQ(cap.refused(), static_cast<uint64_t>(kThreads * kPerThread - kCap));
}

}  // namespace
}  // namespace berth::rpc
