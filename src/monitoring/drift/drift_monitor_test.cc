#include "monitoring/drift/drift_monitor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "core/model.h"
#include "core/tensor_testing.h"

namespace berth::drift {
namespace {

using ::berth::testing::MakeTensor;

// label = (x > 0.5) for x: FP32 [-1, 2] (the first column).
class ThresholdBackend final : public Backend {
 public:
  ThresholdBackend() {
    signature_.inputs = {{"x", DataType::kFp32, {-1, 2}}};
    signature_.outputs = {{"label", DataType::kInt64, {-1}}};
  }
  const ModelSignature& signature() const override { return signature_; }
  Status Execute(std::span<const Tensor> inputs, std::span<const std::string>,
                 std::vector<Tensor>* outputs, BackendTimings*) override {
    const int64_t rows = inputs[0].shape()[0];
    std::vector<int64_t> labels;
    for (int64_t r = 0; r < rows; ++r) labels.push_back(inputs[0].data<float>()[r * 2] > 0.5f);
    outputs->push_back(MakeTensor<int64_t>("label", DataType::kInt64, {rows}, labels));
    return Status::Ok();
  }

 private:
  ModelSignature signature_;
};

class DriftMonitorTest : public ::testing::Test {
 protected:
  DriftMonitorTest() {
    auto m = std::make_shared<Model>();
    m->name = "t";
    m->version = 3;
    m->config.max_batch_size = 1000;
    m->config.monitoring.sample_rate = 1;
    m->config.monitoring.min_window = 100;
    m->backend = std::make_unique<ThresholdBackend>();
    m->signature = m->backend->signature();
    m->scheduler = CreateDirectScheduler();
    model_ = m.get();
    ModelEntry e;
    e.name = "t";
    e.versions.push_back({3, ModelState::kReady, "", std::move(m)});
    models_.Set(std::move(e));
  }

  // `rows` rows of x = (offset + i / rows, 1).
  void Send(int rows, double offset) {
    std::vector<float> x;
    for (int i = 0; i < rows; ++i) {
      x.push_back(static_cast<float>(offset + static_cast<double>(i) / rows));
      x.push_back(1);
    }
    auto request = std::make_unique<InferenceRequest>();
    request->model_name = "t";
    request->inputs.push_back(MakeTensor<float>("x", DataType::kFp32, {rows, 2}, x));
    bool ok = false;
    service_.Infer(std::move(request), [&](StatusOr<InferenceResponse> r) { ok = r.ok(); });
    ASSERT_TRUE(ok);
  }

  // A baseline of x[0] ~ U(0, 1) and labels half 0, half 1.
  static SourcedBaseline Uniform() {
    std::vector<double> values;
    for (int i = 0; i < 1000; ++i) values.push_back(i / 1000.0);
    FeatureProfile x0;
    x0.name = "x0";
    x0.tensor = "x";
    ProfileNumeric(values, &x0);
    FeatureProfile label;
    label.name = label.tensor = "label";
    const std::vector<std::string> labels = {"0", "1"};
    ProfileCategorical(labels, &label);
    BaselineProfile p;
    p.rows = 1000;
    p.features = {x0};
    p.prediction = label;
    return {p, "metadata"};
  }

  std::atomic<int> lookups_{0};
  std::optional<SourcedBaseline> baseline_ = Uniform();
  DriftMonitor monitor_{[this](const std::string&, int64_t)
                            -> StatusOr<std::optional<SourcedBaseline>> {
    ++lookups_;
    return baseline_;
  }};
  ModelManager models_;
  InferenceService service_{&models_, &monitor_};
  const Model* model_ = nullptr;
};

TEST_F(DriftMonitorTest, ASmallWindowIsTooSmallThenAShiftDrifts) {
  Send(50, 0);
  DriftReport r = monitor_.Report(*model_);
  EXPECT_EQ(r.status, "too_small");
  EXPECT_EQ(r.count, 50);
  EXPECT_FALSE(r.drift);
  ASSERT_EQ(r.features.size(), 1u);
  EXPECT_EQ(r.features[0].status, "too_small");

  Send(950, 0);
  r = monitor_.Report(*model_);
  EXPECT_EQ(r.status, "ok");
  EXPECT_EQ(r.baseline_source, "metadata");
  EXPECT_EQ(r.count, 1000);
  EXPECT_FALSE(r.features[0].drift);
  EXPECT_LT(r.features[0].psi, 0.05);
  ASSERT_TRUE(r.prediction.has_value());
  EXPECT_FALSE(r.prediction->drift);

  // The window keeps the last window_count rows: 10,000 by default.
  Send(1000, 0.6);
  r = monitor_.Report(*model_);
  EXPECT_EQ(r.count, 2000);
  EXPECT_TRUE(r.features[0].drift);
  EXPECT_GT(r.features[0].psi, 0.2);
  EXPECT_TRUE(r.prediction->drift);  // 3/4 of the labels are 1 now
  EXPECT_TRUE(r.drift);
  EXPECT_EQ(lookups_.load(), 1);

  const std::string text = monitor_.RenderPrometheus(models_);
  EXPECT_NE(text.find("berth_drift_window_rows{model=\"t\",version=\"3\"} 2000"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("berth_drift_detected{model=\"t\",version=\"3\",feature=\"x0\","
                      "role=\"input\"} 1"),
            std::string::npos)
      << text;
}

TEST_F(DriftMonitorTest, WithoutABaselineTheWindowMakesOne) {
  baseline_.reset();
  Send(200, 0);
  DriftReport r = monitor_.Report(*model_);
  EXPECT_EQ(r.status, "no_baseline");
  EXPECT_EQ(r.count, 200);
  auto profile = monitor_.ProfileWindow(*model_);
  ASSERT_TRUE(profile.ok()) << profile.status().message();
  ASSERT_EQ(profile->features.size(), 2u);  // x[0], x[1]
  EXPECT_EQ(profile->features[0].name, "x[0]");
  EXPECT_EQ(profile->features[1].column, 1);
  EXPECT_EQ(profile->features[0].count, 200);
  EXPECT_NEAR(profile->features[1].mean, 1, 1e-12);
  ASSERT_TRUE(profile->prediction.has_value());
  EXPECT_EQ(profile->prediction->kind, FeatureKind::kCategorical);
  EXPECT_EQ(profile->prediction->frequencies.at("1"), 99);

  // Set as the baseline: the window starts over against it.
  baseline_ = SourcedBaseline{*profile, "store"};
  monitor_.Reset("t", 3);
  Send(200, 0);
  r = monitor_.Report(*model_);
  EXPECT_EQ(r.status, "ok");
  EXPECT_EQ(r.baseline_source, "store");
  EXPECT_EQ(r.count, 200);
  EXPECT_FALSE(r.drift);
  EXPECT_NEAR(r.features[0].psi, 0, 1e-12);
}

TEST_F(DriftMonitorTest, ConcurrentRequestsAndReportsLoseNoRow) {
  monitor_.Start();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this] {
      for (int i = 0; i < 50; ++i) Send(2, 0);
    });
  }
  threads.emplace_back([this] {
    for (int i = 0; i < 20; ++i) monitor_.Report(*model_);
  });
  for (auto& t : threads) t.join();
  EXPECT_EQ(monitor_.Report(*model_).count, 400);
  monitor_.Stop();
}

}  // namespace
}  // namespace berth::drift
