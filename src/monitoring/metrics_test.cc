#include "monitoring/metrics.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace berth {
namespace {

ModelEntry EntryWith(std::vector<int64_t> versions) {
  ModelEntry e;
  e.name = "m";
  for (int64_t v : versions) e.versions.push_back({v, ModelState::kReady, "", nullptr});
  return e;
}

// A version retired (its series dropped) while requests on it still finish:
// recording must never touch a dropped series (run under TSan and ASan).
TEST(MetricsTest, RecordingRacesTheRetirementOfItsVersion) {
  Metrics metrics;
  std::atomic<bool> stop{false};
  std::vector<std::thread> recorders;
  for (int t = 0; t < 4; ++t) {
    recorders.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        metrics.OnInferenceDone("m", std::to_string(i % 3), Status::Ok(),
                                std::chrono::microseconds(10 + t));
        ShadowComparison c;
        metrics.OnShadowDone("m", "2", Status::Ok(), &c, std::chrono::microseconds(5));
      }
    });
  }
  for (int round = 0; round < 2000; ++round) {
    const ModelEntry entry = EntryWith({round % 2 == 0 ? 1 : 2});
    metrics.OnModelChanged("m", &entry);
    if (round % 100 == 0) metrics.OnModelChanged("m", nullptr);
  }
  stop = true;
  for (auto& t : recorders) t.join();
  metrics.OnInferenceDone("m", "0", Status::Ok(), std::chrono::microseconds(1));
  ModelManager models;
  models.Set(EntryWith({0, 1, 2}));
  const std::string text = metrics.RenderPrometheus(models);
  EXPECT_NE(text.find("berth_inference_requests_success_total{model=\"m\",version=\"0\"}"),
            std::string::npos);
}

TEST(MetricsTest, OnlyVersionsTheTableHasAreRendered) {
  Metrics metrics;
  metrics.OnInferenceDone("m", "1", Status::Ok(), std::chrono::microseconds(1));
  metrics.OnInferenceDone("m", "2", Status::Ok(), std::chrono::microseconds(1));
  ModelManager models;
  models.Set(EntryWith({2}));
  const std::string text = metrics.RenderPrometheus(models);
  EXPECT_EQ(text.find("version=\"1\""), std::string::npos);
  EXPECT_NE(text.find("berth_inference_requests_success_total{model=\"m\",version=\"2\"} 1"),
            std::string::npos);
}

}  // namespace
}  // namespace berth
