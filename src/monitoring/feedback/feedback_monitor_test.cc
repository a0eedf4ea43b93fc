#include "monitoring/feedback/feedback_monitor.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <thread>
#include <vector>

#include "core/model.h"
#include "core/tensor_testing.h"

namespace berth::feedback {
namespace {

namespace fs = std::filesystem;
using ::berth::testing::MakeTensor;

// label = (x > 0.5), probabilities = (1 - x, x), for x: FP32 [-1, 1].
class BinaryBackend final : public Backend {
 public:
  BinaryBackend() {
    signature_.inputs = {{"x", DataType::kFp32, {-1, 1}}};
    signature_.outputs = {{"label", DataType::kInt64, {-1}},
                          {"probabilities", DataType::kFp32, {-1, 2}}};
  }
  const ModelSignature& signature() const override { return signature_; }
  Status Execute(std::span<const Tensor> inputs, std::span<const std::string>,
                 std::vector<Tensor>* outputs, BackendTimings*) override {
    const int64_t rows = inputs[0].shape()[0];
    std::vector<int64_t> labels;
    std::vector<float> p;
    for (int64_t r = 0; r < rows; ++r) {
      const float x = inputs[0].data<float>()[r];
      labels.push_back(x > 0.5f);
      p.push_back(1 - x);
      p.push_back(x);
    }
    outputs->push_back(MakeTensor<int64_t>("label", DataType::kInt64, {rows}, labels));
    outputs->push_back(MakeTensor<float>("probabilities", DataType::kFp32, {rows, 2}, p));
    return Status::Ok();
  }

 private:
  ModelSignature signature_;
};

class FeedbackMonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "berth_feedback_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto store = OpenSqliteRegistryStore((dir_ / "registry.db").string());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    VersionRecord v;
    v.model = "t";
    v.version = 3;
    v.digest = "sha256:aa";
    v.format = "onnx";
    v.source = "directory";
    v.metadata_json = R"({"metrics": {"accuracy": 0.9, "f1": 0.8, "log_loss": 0.3}})";
    ASSERT_TRUE(store_->RegisterVersion(v, "test").ok());

    auto m = std::make_shared<Model>();
    m->name = "t";
    m->version = 3;
    m->config.max_batch_size = 1000;
    m->config.monitoring.feedback.enabled = true;
    m->backend = std::make_unique<BinaryBackend>();
    m->signature = m->backend->signature();
    m->scheduler = CreateDirectScheduler();
    model_ = m.get();
    ModelEntry e;
    e.name = "t";
    e.versions.push_back({3, ModelState::kReady, "", std::move(m)});
    models_.Set(std::move(e));
    monitor_ = std::make_unique<FeedbackMonitor>(store_.get(), &models_);
    service_ = std::make_unique<InferenceService>(&models_, monitor_.get());
  }
  void TearDown() override {
    service_.reset();
    monitor_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  // One request of `x`'s rows; returns the response's id.
  std::string Send(const std::vector<float>& x, const std::string& id = "") {
    auto request = std::make_unique<InferenceRequest>();
    request->model_name = "t";
    request->id = id;
    request->inputs.push_back(
        MakeTensor<float>("x", DataType::kFp32, {static_cast<int64_t>(x.size()), 1}, x));
    std::string answered;
    service_->Infer(std::move(request), [&](StatusOr<InferenceResponse> r) {
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (r.ok()) answered = r->id;
    });
    return answered;
  }

  fs::path dir_;
  std::unique_ptr<RegistryStore> store_;
  ModelManager models_;
  const Model* model_ = nullptr;
  std::unique_ptr<FeedbackMonitor> monitor_;
  std::unique_ptr<InferenceService> service_;
};

TEST_F(FeedbackMonitorTest, RequestsFromManyThreadsAreKeptAndJoined) {
  monitor_->Start();
  constexpr int kThreads = 4;
  constexpr int kRequests = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < kRequests; ++i) {
        // Rows 0.2 and 0.7: predicted 0 and 1.
        Send({0.2f, 0.7f}, "t" + std::to_string(t) + "-" + std::to_string(i));
      }
    });
  }
  for (auto& t : threads) t.join();
  // The truth: row 0 is 0 always; row 1 is 1 for even requests, else 0.
  std::vector<FeedbackItem> items;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kRequests; ++i) {
      const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
      items.push_back({id, 0, "0"});
      items.push_back({id, 1, i % 2 == 0 ? "1" : "0"});
    }
  }
  auto counts = monitor_->AddFeedback(*model_, std::nullopt, items);
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  EXPECT_EQ(counts->joined, 2 * kThreads * kRequests);
  EXPECT_EQ(counts->unknown + counts->duplicate + counts->late, 0);
  monitor_->Stop();

  auto report = monitor_->Report(*model_);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->task, "classification");
  EXPECT_EQ(report->count, 2 * kThreads * kRequests);
  std::map<std::string, double> m(report->metrics.begin(), report->metrics.end());
  // Half the second rows are wrong: 3 of 4 rows right; tp 1, fp 1, fn 0 per
  // pair.
  EXPECT_DOUBLE_EQ(m["accuracy"], 0.75);
  EXPECT_DOUBLE_EQ(m["precision"], 0.5);
  EXPECT_DOUBLE_EQ(m["recall"], 1);
  // Scores 0.2 (negatives) and 0.7 (half positive): every positive ranks
  // above the 0.2s and ties half the 0.7 negatives.
  EXPECT_DOUBLE_EQ(m["roc_auc"], (2.0 / 3) * 1 + (1.0 / 3) * 0.5);
  EXPECT_DOUBLE_EQ(*monitor_->AccuracyDrop("t", 3, "accuracy"), 0.9 - 0.75);
  EXPECT_DOUBLE_EQ(*monitor_->Accuracy("t", 3, "recall"), 1);
  EXPECT_FALSE(monitor_->AccuracyDrop("t", 3, "log_loss").has_value());  // not computed
  EXPECT_FALSE(monitor_->AccuracyDrop("t", 4, "accuracy").has_value());  // no such version
  EXPECT_FALSE(monitor_->AccuracyDrop("u", 3, "accuracy").has_value());

  const std::string text = monitor_->RenderPrometheus();
  EXPECT_NE(text.find("berth_model_accuracy{model=\"t\",version=\"3\",metric="
                      "\"accuracy\"} 0.75\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("berth_feedback_total{model=\"t\",outcome=\"joined\"} 400\n"),
            std::string::npos);
  EXPECT_NE(text.find("berth_feedback_predictions_written_total 400\n"), std::string::npos);

  // A new monitor (a restart) reads the window back from the store.
  FeedbackMonitor again(store_.get(), &models_);
  auto reread = again.Report(*model_);
  ASSERT_TRUE(reread.ok());
  EXPECT_EQ(reread->count, 2 * kThreads * kRequests);
  EXPECT_EQ(reread->metrics, report->metrics);
}

TEST_F(FeedbackMonitorTest, IdsAreGivenAndFeedbackIsCountedByFate) {
  const std::string id = Send({0.9f});
  EXPECT_EQ(id.size(), 32u);
  EXPECT_EQ(Send({0.9f}, "mine"), "mine");
  auto counts = monitor_->AddFeedback(*model_, std::nullopt,
                                      {{id, 0, "1"}, {id, 0, "1"}, {id, 1, "1"}, {"mine", 0, "0"}});
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->joined, 2);
  EXPECT_EQ(counts->duplicate, 1);
  EXPECT_EQ(counts->unknown, 1);
  auto report = monitor_->Report(*model_);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->count, 2);
  EXPECT_EQ(report->feedback.duplicate, 1);
}

TEST_F(FeedbackMonitorTest, AVersionWithoutFeedbackOrAStoreIsRefused) {
  Model plain;
  plain.name = "p";
  plain.version = 1;
  EXPECT_EQ(monitor_->AddFeedback(plain, std::nullopt, {{"a", 0, "1"}}).status().code(),
            Status::Code::kFailedPrecondition);
  EXPECT_EQ(monitor_->Report(plain).status().code(), Status::Code::kFailedPrecondition);
  FeedbackMonitor no_store(nullptr, &models_);
  EXPECT_EQ(no_store.AddFeedback(*model_, std::nullopt, {{"a", 0, "1"}}).status().code(),
            Status::Code::kFailedPrecondition);
}

}  // namespace
}  // namespace berth::feedback
