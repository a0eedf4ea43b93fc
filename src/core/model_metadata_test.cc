#include "core/model_metadata.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/scheduler.h"  // Model owns a unique_ptr<Scheduler>

namespace berth {
namespace {

VersionEntry Ready(int64_t version) {
  auto m = std::make_shared<Model>();
  m->name = "iris";
  m->version = version;
  m->platform = "onnxruntime_onnx";
  m->signature.inputs = {{"x", DataType::kFp32, {-1, 4}}};
  m->signature.outputs = {{"label", DataType::kInt64, {-1}}};
  VersionEntry v;
  v.version = version;
  v.state = ModelState::kReady;
  v.model = std::move(m);
  return v;
}

VersionEntry Unavailable(int64_t version, std::string reason) {
  VersionEntry v;
  v.version = version;
  v.state = ModelState::kUnavailable;
  v.reason = std::move(reason);
  return v;
}

ModelEntry Entry(std::string name, std::vector<VersionEntry> versions, std::string reason = "") {
  ModelEntry e;
  e.name = std::move(name);
  e.reason = std::move(reason);
  e.versions = std::move(versions);
  return e;
}

TEST(ModelMetadataTest, WithoutSelectorListsEveryReadyVersion) {
  ModelManager models;
  models.Set(Entry("iris", {Ready(1), Unavailable(2, "corrupt"), Ready(3)}));
  auto metadata = GetModelMetadata(models, "iris", "");
  ASSERT_TRUE(metadata.ok()) << metadata.status().message();
  EXPECT_EQ(metadata->name, "iris");
  EXPECT_EQ(metadata->versions, (std::vector<std::string>{"1", "3"}));
  EXPECT_EQ(metadata->platform, "onnxruntime_onnx");
  EXPECT_EQ(metadata->inputs, (std::vector<TensorSpec>{{"x", DataType::kFp32, {-1, 4}}}));
  EXPECT_EQ(metadata->outputs, (std::vector<TensorSpec>{{"label", DataType::kInt64, {-1}}}));
}

TEST(ModelMetadataTest, WithSelectorListsThatVersionOnly) {
  ModelManager models;
  models.Set(Entry("iris", {Ready(1), Ready(3)}));
  auto metadata = GetModelMetadata(models, "iris", "1");
  ASSERT_TRUE(metadata.ok()) << metadata.status().message();
  EXPECT_EQ(metadata->versions, (std::vector<std::string>{"1"}));
}

TEST(ModelMetadataTest, ErrorsAreResolves) {
  ModelManager models;
  models.Set(Entry("iris", {Ready(1), Unavailable(2, "corrupt")}));
  EXPECT_EQ(GetModelMetadata(models, "nope", "").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(GetModelMetadata(models, "iris", "7").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(GetModelMetadata(models, "iris", "2").status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(GetModelMetadata(models, "../x", "").status().code(),
            Status::Code::kInvalidArgument);
}

TEST(RepositoryIndexTest, ListsEveryVersionAndModelsWithoutOne) {
  const std::vector<ModelEntry> models = {
      Entry("broken", {}, "bad config"),
      Entry("iris", {Unavailable(1, "corrupt"), Ready(2)}),
  };
  const std::vector<IndexEntry> all = RepositoryIndex(models, /*ready_only=*/false);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].name, "broken");
  EXPECT_EQ(all[0].version, "");
  EXPECT_EQ(all[0].state, ModelState::kUnavailable);
  EXPECT_EQ(all[0].reason, "bad config");
  EXPECT_EQ(all[1].version, "1");
  EXPECT_EQ(all[1].state, ModelState::kUnavailable);
  EXPECT_EQ(all[1].reason, "corrupt");
  EXPECT_EQ(all[2].version, "2");
  EXPECT_EQ(all[2].state, ModelState::kReady);

  const std::vector<IndexEntry> ready = RepositoryIndex(models, /*ready_only=*/true);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].name, "iris");
  EXPECT_EQ(ready[0].version, "2");
}

}  // namespace
}  // namespace berth
