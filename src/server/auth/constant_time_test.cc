// Whether checking a secret takes the same time however much of it is right:
// a statistical check on relative timing, in process, where a comparison's
// nanoseconds are visible (over HTTP they drown in a round trip's jitter).
//
// The detector times batches of calls on two inputs, interleaved in a
// shuffled order (so frequency changes, other processes and cache effects
// fall on both alike), over several rounds, and compares the inputs'
// interquartile means (so a batch that was preempted does not count); the
// median round decides. It says "differs" when they are further apart than
// kFlagGap of the smaller, in each of up to kAttempts attempts on fresh
// copies of the inputs. Each test first shows that the detector flags a
// deliberately leaky version of the same check (a byte loop that stops at
// the first difference), then that it does not flag the real one: a
// detector that cannot fail proves nothing.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "server/auth/api_key.h"
#include "server/auth/authorizer.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BERTH_TIMING_UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define BERTH_TIMING_UNDER_SANITIZER 1
#endif
#endif

namespace berth::auth {
namespace {

// A gap above this fraction of the smaller time is a leak. Measured on a
// loaded two-core machine: the leaky controls below differ by about 9% (a
// leaky compare after a SHA-256) to several times; the real checks by under
// 1.5%.
constexpr double kFlagGap = 0.05;
// Between an unknown id and a known one with a wrong secret, what must not
// differ is the work on the secret (a refusal without its SHA-256 is about
// 400% cheaper); the key table's lookup, a miss against a hit, costs some
// 10 ns (2-3.5%) more or less and says nothing about the secret.
constexpr double kIdGap = 0.10;
constexpr int kRounds = 9;
constexpr int kAttempts = 3;
constexpr int kBatchesPerRound = 400;  // per input

void SkipUnderSanitizers() {
#ifdef BERTH_TIMING_UNDER_SANITIZER
  GTEST_SKIP() << "timing comparisons are meaningless under ASan/TSan: their instrumentation "
                  "of every memory access dominates and differs between the test's leaky "
                  "controls and OpenSSL's uninstrumented CRYPTO_memcmp";
#endif
}

// Hides a value from the optimiser, so that a call on a loop-invariant
// input is neither hoisted out of the loop nor folded.
template <typename T>
inline void Opaque(T& value) {
  asm volatile("" : "+r"(value));
}

struct TimingVerdict {
  double mean_a = 0;  // ns per batch: interquartile mean over every round
  double mean_b = 0;
  double gap = 0;  // the median over the rounds of |a - b| / min(a, b)
  bool differs = false;
};

std::ostream& operator<<(std::ostream& os, const TimingVerdict& v) {
  return os << "batch " << v.mean_a << " ns vs " << v.mean_b << " ns, gap " << v.gap * 100 << "%";
}

// The mean of the middle half: robust to batches that were preempted (the
// top) and, unlike the median, stable when the times fall in two modes.
double InterquartileMean(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t from = v.size() / 4, to = v.size() - v.size() / 4;
  double sum = 0;
  for (size_t i = from; i < to; ++i) sum += v[i];
  return sum / static_cast<double>(to - from);
}

double Gap(double a, double b) { return std::abs(a - b) / std::min(a, b); }

// Times `check(input)` on `a` and on `b` (they differ when the gap is over
// `flag_gap`): kRounds rounds, each of
// kBatchesPerRound batches of `per_batch` calls per input, the two inputs'
// batches in a shuffled order. A round's gap compares the two inputs'
// interquartile means; the verdict takes the median round, so that a burst
// of load during one round does not decide it.
template <typename Check>
TimingVerdict MeasureOnce(const char* what, const Check& check, std::string_view a,
                          std::string_view b, int per_batch, double flag_gap = kFlagGap) {
  std::mt19937 random(20261202);
  std::vector<uint8_t> order(2 * kBatchesPerRound);
  for (size_t i = 0; i < order.size(); ++i) order[i] = i % 2;
  std::vector<double> all[2];
  std::vector<double> gaps;
  int sink = 0;
  // Warm the code, the data and the branch predictors on both inputs.
  for (int i = 0; i < 50 * per_batch; ++i) sink += check(i % 2 ? a : b);
  for (int round = 0; round < kRounds; ++round) {
    std::shuffle(order.begin(), order.end(), random);
    std::vector<double> times[2];
    for (const uint8_t which : order) {
      std::string_view input = which ? b : a;
      const auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < per_batch; ++i) {
        Opaque(input);
        sink += check(input);
      }
      const auto end = std::chrono::steady_clock::now();
      times[which].push_back(std::chrono::duration<double, std::nano>(end - start).count());
    }
    gaps.push_back(Gap(InterquartileMean(times[0]), InterquartileMean(times[1])));
    for (int i : {0, 1}) all[i].insert(all[i].end(), times[i].begin(), times[i].end());
  }
  Opaque(sink);
  TimingVerdict v;
  v.mean_a = InterquartileMean(std::move(all[0]));
  v.mean_b = InterquartileMean(std::move(all[1]));
  std::nth_element(gaps.begin(), gaps.begin() + gaps.size() / 2, gaps.end());
  v.gap = gaps[gaps.size() / 2];
  v.differs = v.gap > flag_gap;
  std::printf("  timing: %-56s batch %6.0f ns vs %6.0f ns, gap %6.2f%%\n", what, v.mean_a, v.mean_b,
              v.gap * 100);
  return v;
}

// MeasureOnce up to kAttempts times, each on fresh copies of the inputs at
// other addresses; the inputs differ only if every attempt says so. A leak
// is in the code and shows each time; an accident of memory layout (two
// buffers 4 KiB apart, say) or of load does not survive a new attempt. The
// leaky controls go through the same procedure, so it is shown to flag them.
template <typename Check>
TimingVerdict CompareTimings(const char* what, const Check& check, std::string_view a,
                             std::string_view b, int per_batch, double flag_gap = kFlagGap) {
  TimingVerdict v;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    const size_t offset = 24 * static_cast<size_t>(attempt) + 8;
    const std::string copy_a = std::string(offset, ' ') + std::string(a);
    const std::string copy_b = std::string(2 * offset, ' ') + std::string(b);
    v = MeasureOnce(what, check, std::string_view(copy_a).substr(offset),
                    std::string_view(copy_b).substr(2 * offset), per_batch, flag_gap);
    if (!v.differs) break;
  }
  return v;
}

// The comparison a careless implementation writes: it stops at the first
// differing byte. The empty asm keeps the compiler from widening the loop
// (which would shrink the leak, not remove it).
bool LeakyEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) return false;
    asm volatile("");
  }
  return true;
}

// Every character changed, and only the last one.
std::string Far(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = c == '0' ? '1' : '0';
  return out;
}
std::string Near(std::string_view s) {
  std::string out(s);
  out.back() = out.back() == '0' ? '1' : '0';
  return out;
}

TEST(ConstantTimeTest, VerifiedSecretTakesAsLongWhateverPrefixMatches) {
  SkipUnderSanitizers();
  if (IsSkipped()) return;
  const std::string secret = "0123456789abcdef0123456789abcdef";
  ASSERT_EQ(secret.size(), kKeySecretDigits);
  VerifiedSecret verified;
  verified.Remember(secret);
  const std::string far = Far(secret), near = Near(secret);
  ASSERT_FALSE(verified.Matches(far));
  ASSERT_FALSE(verified.Matches(near));

  const auto leaky = [&](std::string_view s) { return LeakyEquals(secret, s); };
  const TimingVerdict control =
      CompareTimings("leaky byte loop, 32 digits, 0 vs 31 right", leaky, far, near, 64);
  EXPECT_TRUE(control.differs) << "the detector missed a leaky comparison: " << control;

  const auto real = [&](std::string_view s) { return verified.Matches(s); };
  const TimingVerdict v =
      CompareTimings("VerifiedSecret::Matches, 0 vs 31 right", real, far, near, 64);
  EXPECT_FALSE(v.differs) << "VerifiedSecret::Matches leaks the matching prefix: " << v;
}

TEST(ConstantTimeTest, SecretMatchesComparesTheHashInConstantTime) {
  SkipUnderSanitizers();
  if (IsSkipped()) return;
  // The stored hash against a hash that shares none of its 64 digits and
  // one that shares all but the last: the comparison inside SecretMatches,
  // with the SHA-256 and its allocations around it as in a real check.
  const std::string salt = "000102030405060708090a0b0c0d0e0f";
  const std::string secret = "0123456789abcdef0123456789abcdef";
  const std::string hash = HashSecret(salt, secret);
  ASSERT_EQ(hash.size(), 64u);
  const std::string far = Far(hash), near = Near(hash);
  ASSERT_TRUE(SecretMatches(salt, hash, secret));
  ASSERT_FALSE(SecretMatches(salt, near, secret));

  const auto leaky = [&](std::string_view h) {
    const std::string computed = HashSecret(salt, secret);
    return LeakyEquals(computed, h);
  };
  const TimingVerdict control =
      CompareTimings("SHA-256 then leaky loop, 64 digits, 0 vs 63 right", leaky, far, near, 8);
  EXPECT_TRUE(control.differs) << "the detector missed a leaky comparison: " << control;

  const auto real = [&](std::string_view h) { return SecretMatches(salt, h, secret); };
  const TimingVerdict v = CompareTimings("SecretMatches, hash 0 vs 63 right", real, far, near, 8);
  EXPECT_FALSE(v.differs) << "SecretMatches leaks the matching prefix of the hash: " << v;
}

// Every refusal of a well-formed key costs one SHA-256: an unknown id is
// hashed against a dummy, so a prober cannot tell ids that exist from ids
// that do not, nor learn how much of a secret is right.
TEST(ConstantTimeTest, RefusalsOfWellFormedKeysCostTheSame) {
  SkipUnderSanitizers();
  if (IsSkipped()) return;
  namespace fs = std::filesystem;
  std::string tmpl = (fs::temp_directory_path() / "berth_constant_time_XXXXXX").string();
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  const fs::path dir = tmpl;
  struct Cleanup {
    fs::path dir;
    ~Cleanup() { fs::remove_all(dir); }
  } cleanup{dir};
  auto store = OpenSqliteRegistryStore((dir / "registry.db").string());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Authorizer authorizer({.require_auth = true}, store->get());
  auto key = authorizer.CreateKey({"reader", {"read"}, 0, 0});
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  const std::string good = "Bearer " + *key;
  // Used once, so that its secret is remembered as in a busy server.
  ASSERT_TRUE(authorizer.Authorize({good, "10.0.0.1", ""}, Scope::kRead).status.ok());
  const size_t secret_at = good.size() - kKeySecretDigits;
  const std::string wrong_far = good.substr(0, secret_at) + Far(good.substr(secret_at));
  const std::string wrong_near = Near(good);
  std::string unknown_id = wrong_far;
  char& id_digit = unknown_id[secret_at - 2];  // the id's last digit
  id_digit = id_digit == '0' ? '1' : '0';
  // Same length, refused by the parser (an upper-case id) before any hash.
  std::string malformed = wrong_far;
  malformed[std::string_view("Bearer berth_").size()] = 'X';
  const auto refused = [&](std::string_view header) {
    return authorizer.Authorize({header, "10.0.0.1", ""}, Scope::kRead).status.ok() ? 0 : 1;
  };
  for (const std::string& h : {wrong_far, wrong_near, unknown_id, malformed}) {
    ASSERT_EQ(refused(h), 1) << h;
  }

  // The control: a refusal without the hash is told apart.
  const TimingVerdict control = CompareTimings("Authorize: malformed (no hash) vs wrong secret",
                                               refused, malformed, wrong_far, 8, kIdGap);
  EXPECT_TRUE(control.differs) << "the detector missed the cost of a SHA-256: " << control;

  const TimingVerdict id = CompareTimings("Authorize: unknown id vs wrong secret", refused,
                                          unknown_id, wrong_far, 8, kIdGap);
  EXPECT_FALSE(id.differs) << "an unknown id is refused at another cost than a known one: " << id;
  const TimingVerdict prefix =
      CompareTimings("Authorize: wrong secret, 0 vs 31 right", refused, wrong_far, wrong_near, 8);
  EXPECT_FALSE(prefix.differs) << "a wrong secret's cost depends on its matching prefix: "
                               << prefix;
}

}  // namespace
}  // namespace berth::auth
