#include "monitoring/metrics.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace berth {
namespace {

// A request that took `total` and ran alone.
InferenceTimings Took(std::chrono::microseconds total) {
  InferenceTimings t;
  t.total = total;
  t.finished = std::chrono::steady_clock::now();
  t.batch_size = 1;
  t.counts_execution = true;
  return t;
}

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
                                Took(std::chrono::microseconds(10 + t)));
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
  metrics.OnInferenceDone("m", "0", Status::Ok(), Took(std::chrono::microseconds(1)));
  ModelManager models;
  models.Set(EntryWith({0, 1, 2}));
  const std::string text = metrics.RenderPrometheus(models);
  EXPECT_NE(text.find("berth_inference_requests_success_total{model=\"m\",version=\"0\"}"),
            std::string::npos);
}

TEST(MetricsTest, OnlyVersionsTheTableHasAreRendered) {
  Metrics metrics;
  metrics.OnInferenceDone("m", "1", Status::Ok(), Took(std::chrono::microseconds(1)));
  metrics.OnInferenceDone("m", "2", Status::Ok(), Took(std::chrono::microseconds(1)));
  ModelManager models;
  models.Set(EntryWith({2}));
  const std::string text = metrics.RenderPrometheus(models);
  EXPECT_EQ(text.find("version=\"1\""), std::string::npos);
  EXPECT_NE(text.find("berth_inference_requests_success_total{model=\"m\",version=\"2\"} 1"),
            std::string::npos);
}

// One execution of `rows` rows shared by `requests` requests, each having
// waited `queue`.
void RecordBatch(Metrics* metrics, const std::string& version, int requests, int64_t rows,
                 std::chrono::microseconds queue) {
  for (int i = 0; i < requests; ++i) {
    InferenceTimings t;
    t.queue = queue;
    t.compute_input = std::chrono::microseconds(1);
    t.compute_infer = std::chrono::microseconds(20);
    t.compute_output = std::chrono::microseconds(3);
    t.total = std::chrono::microseconds(100);
    t.finished = std::chrono::steady_clock::now();
    t.batch_size = rows;
    t.counts_execution = i == 0;
    metrics->OnInferenceDone("m", version, Status::Ok(), t);
  }
}

// The statistics extension and /metrics read the same counters: requests,
// rows and executions, each phase's time, and the executions by batch size.
TEST(MetricsTest, StatisticsAndPrometheusCountTheSameExecutions) {
  Metrics metrics;
  RecordBatch(&metrics, "1", 3, 5, std::chrono::microseconds(50));  // 3 requests, one batch of 5
  RecordBatch(&metrics, "1", 1, 1, std::chrono::microseconds(0));
  RecordBatch(&metrics, "1", 1, 1, std::chrono::microseconds(0));
  InferenceTimings failed;
  failed.total = std::chrono::microseconds(7);
  failed.finished = std::chrono::steady_clock::now();
  metrics.OnInferenceDone("m", "1", Status::InvalidArgument("bad"), failed);

  const ModelStatistics stats = metrics.Statistics("m", "1");
  EXPECT_EQ(stats.name, "m");
  EXPECT_EQ(stats.version, "1");
  EXPECT_EQ(stats.inference_count, 7u);
  EXPECT_EQ(stats.execution_count, 3u);
  EXPECT_EQ(stats.success.count, 5u);
  EXPECT_EQ(stats.success.ns, 500'000u);
  EXPECT_EQ(stats.fail.count, 1u);
  EXPECT_EQ(stats.fail.ns, 7'000u);
  EXPECT_EQ(stats.queue.count, 5u);
  EXPECT_EQ(stats.queue.ns, 150'000u);
  EXPECT_EQ(stats.compute_input.ns, 5'000u);
  EXPECT_EQ(stats.compute_infer.count, 5u);
  EXPECT_EQ(stats.compute_infer.ns, 100'000u);
  EXPECT_EQ(stats.compute_output.ns, 15'000u);
  EXPECT_EQ(stats.cache_hit.count, 0u);
  EXPECT_GT(stats.last_inference_ms, 0u);
  ASSERT_EQ(stats.batch_stats.size(), 2u);
  EXPECT_EQ(stats.batch_stats[0].batch_size, 1u);
  EXPECT_EQ(stats.batch_stats[0].compute_infer.count, 2u);
  EXPECT_EQ(stats.batch_stats[0].compute_infer.ns, 40'000u);
  EXPECT_EQ(stats.batch_stats[1].batch_size, 5u);
  EXPECT_EQ(stats.batch_stats[1].compute_input.count, 1u);
  EXPECT_EQ(stats.batch_stats[1].compute_output.ns, 3'000u);

  ModelManager models;
  models.Set(EntryWith({1}));
  const std::string text = metrics.RenderPrometheus(models);
  const std::string labels = "{model=\"m\",version=\"1\"";
  for (const std::string line : {
           "berth_batch_size_count" + labels + "} 3\n",
           "berth_batch_size_sum" + labels + "} 7\n",
           "berth_batch_size_bucket" + labels + ",le=\"1\"} 2\n",
           "berth_batch_size_bucket" + labels + ",le=\"8\"} 3\n",
           "berth_inference_queue_duration_seconds_count" + labels + "} 5\n",
           "berth_inference_queue_duration_seconds_sum" + labels + "} 0.000150000\n",
           "berth_inference_compute_duration_seconds_count" + labels + ",phase=\"infer\"} 5\n",
           "berth_inference_compute_duration_seconds_sum" + labels +
               ",phase=\"infer\"} 0.000100000\n",
           "berth_inference_compute_duration_seconds_sum" + labels +
               ",phase=\"output\"} 0.000015000\n",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << line;
  }
}

// A bucket holds what is at most its bound, for every bound.
TEST(MetricsTest, LatencyBucketsIncludeTheirUpperBound) {
  for (size_t b = 0; b < Metrics::kLatencyBuckets.size(); ++b) {
    Metrics metrics;
    const auto bound = std::chrono::nanoseconds(
        static_cast<int64_t>(std::llround(Metrics::kLatencyBuckets[b] * 1e9)));
    metrics.OnInferenceDone("m", "1", Status::Ok(), Took(std::chrono::microseconds(0)));
    InferenceTimings t = Took(std::chrono::microseconds(0));
    t.total = bound;
    metrics.OnInferenceDone("m", "1", Status::Ok(), t);
    t.total = bound + std::chrono::nanoseconds(1);
    metrics.OnInferenceDone("m", "1", Status::Ok(), t);
    ModelManager models;
    models.Set(EntryWith({1}));
    char le[32];
    std::snprintf(le, sizeof(le), "%g", Metrics::kLatencyBuckets[b]);
    const std::string line = "berth_inference_request_duration_seconds_bucket{model=\"m\","
                             "version=\"1\",le=\"" + std::string(le) + "\"} 2\n";
    EXPECT_NE(metrics.RenderPrometheus(models).find(line), std::string::npos) << line;
  }
}

TEST(MetricsTest, AVersionThatServedNothingHasZeroStatistics) {
  Metrics metrics;
  const ModelStatistics stats = metrics.Statistics("m", "4");
  EXPECT_EQ(stats.name, "m");
  EXPECT_EQ(stats.version, "4");
  EXPECT_EQ(stats.last_inference_ms, 0u);
  EXPECT_EQ(stats.success.count, 0u);
  EXPECT_TRUE(stats.batch_stats.empty());
}

TEST(MetricsTest, InFlightGaugeReadsTheVersion) {
  Metrics metrics;
  ModelEntry entry = EntryWith({});
  auto model = std::make_shared<Model>();
  model->name = "m";
  model->version = 3;
  model->in_flight = 2;
  entry.versions.push_back({3, ModelState::kReady, "", model});
  ModelManager models;
  models.Set(entry);
  EXPECT_NE(metrics.RenderPrometheus(models).find(
                "berth_inference_requests_in_flight{model=\"m\",version=\"3\"} 2\n"),
            std::string::npos);
}

// Threads record executions of new batch sizes (inserting their counters)
// while others read the statistics and the Prometheus text: the totals come
// out exact (run under TSan and ASan).
TEST(MetricsTest, ConcurrentExecutionsOfNewBatchSizesAreCountedExactly) {
  Metrics metrics;
  ModelManager models;
  models.Set(EntryWith({1}));
  constexpr int kThreads = 4;
  constexpr int kExecutions = 500;
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop) {
      metrics.Statistics("m", "1");
      metrics.RenderPrometheus(models);
    }
  });
  std::vector<std::thread> recorders;
  for (int t = 0; t < kThreads; ++t) {
    recorders.emplace_back([&, t] {
      for (int i = 0; i < kExecutions; ++i) {
        RecordBatch(&metrics, "1", 2, 1 + (i + t) % 40, std::chrono::microseconds(1));
      }
    });
  }
  for (auto& r : recorders) r.join();
  stop = true;
  reader.join();
  const ModelStatistics stats = metrics.Statistics("m", "1");
  EXPECT_EQ(stats.execution_count, uint64_t{kThreads * kExecutions});
  EXPECT_EQ(stats.success.count, uint64_t{2 * kThreads * kExecutions});
  uint64_t executions = 0;
  uint64_t rows = 0;
  for (const BatchStatistics& b : stats.batch_stats) {
    executions += b.compute_infer.count;
    rows += b.batch_size * b.compute_infer.count;
  }
  EXPECT_EQ(stats.batch_stats.size(), 40u);
  EXPECT_EQ(executions, stats.execution_count);
  EXPECT_EQ(rows, stats.inference_count);
}

}  // namespace
}  // namespace berth

namespace berth {
namespace {

TEST(MetricsTest, RequestsAreCountedByTheirDoor) {
  Metrics metrics;
  auto from = [](Protocol p) {
    InferenceTimings t = Took(std::chrono::microseconds(10));
    t.protocol = p;
    return t;
  };
  for (int i = 0; i < 3; ++i) metrics.OnInferenceDone("m", "1", Status::Ok(), from(Protocol::kRest));
  metrics.OnInferenceDone("m", "1", Status::Ok(), from(Protocol::kGrpc));
  metrics.OnInferenceDone("m", "1", Status::InvalidArgument("x"), from(Protocol::kTfServing));
  metrics.OnInferenceDone("", "", Status::NotFound("x"), from(Protocol::kSageMaker));
  ModelManager models;
  models.Set(EntryWith({1}));
  const std::string text = metrics.RenderPrometheus(models);
  for (const char* line :
       {"berth_inference_requests_total{model=\"m\",version=\"1\",protocol=\"rest\","
        "outcome=\"success\"} 3\n",
        "berth_inference_requests_total{model=\"m\",version=\"1\",protocol=\"grpc\","
        "outcome=\"success\"} 1\n",
        "berth_inference_requests_total{model=\"m\",version=\"1\",protocol=\"tfserving\","
        "outcome=\"failure\"} 1\n",
        "berth_inference_requests_total{model=\"\",version=\"\",protocol=\"sagemaker\","
        "outcome=\"failure\"} 1\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << " not in\n" << text;
  }
  // Doors that saw nothing add no series.
  EXPECT_EQ(text.find("protocol=\"azure\""), std::string::npos);
  // Today's series keep their names and labels.
  EXPECT_NE(text.find("berth_inference_requests_success_total{model=\"m\",version=\"1\"} 4\n"),
            std::string::npos);
}

}  // namespace
}  // namespace berth
