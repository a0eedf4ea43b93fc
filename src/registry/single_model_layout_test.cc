// SingleModelLayout: KServe's /mnt/models layouts become a repository of one
// model that ModelRepository loads, without writing to the source.
#include "registry/single_model_layout.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "backends/onnxruntime/onnxruntime_backend.h"
#include "core/model_manager.h"
#include "registry/model_repository.h"

namespace berth {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const fs::path kData = BERTH_TEST_DATA_DIR;

class SingleModelLayoutTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { factory_ = CreateOnnxRuntimeFactory().release(); }
  static void TearDownTestSuite() {
    delete factory_;
    factory_ = nullptr;
  }
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "berth_single_model_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    source_ = root_ / "mnt-models";
    scratch_ = root_ / "scratch";
    fs::create_directories(source_);
    fs::create_directories(scratch_);
  }
  void TearDown() override {
    fs::permissions(source_, fs::perms::owner_all, fs::perm_options::add);
    fs::remove_all(root_);
  }

  // Loads `repository` and returns the state of `name`'s version 1.
  ModelState LoadedState(const fs::path& repository, const std::string& name) {
    ModelManager models;
    ModelRepository repo(repository, std::map<std::string, BackendFactory*>{{"onnx", factory_}},
                         &models);
    EXPECT_TRUE(repo.LoadAll().ok());
    auto entry = models.Find(name);
    if (!entry.has_value() || entry->versions.empty()) return ModelState::kUnavailable;
    return entry->versions.front().state;
  }

  static BackendFactory* factory_;
  fs::path root_, source_, scratch_;
};

BackendFactory* SingleModelLayoutTest::factory_ = nullptr;

TEST_F(SingleModelLayoutTest, OneOnnxFileIsVersionOneOfTheNamedModel) {
  fs::copy_file(kData / "add_fp32.onnx", source_ / "model.onnx");
  fs::permissions(source_, fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write,
                  fs::perm_options::remove);  // as KServe mounts it: read-only
  auto layout = SingleModelLayout::Create(source_, "iris", scratch_);
  ASSERT_TRUE(layout.ok()) << layout.status().ToString();
  const fs::path repository = (*layout)->repository();
  EXPECT_EQ(repository.parent_path(), scratch_);
  EXPECT_TRUE(fs::is_symlink(repository / "iris" / "1" / "model.onnx"));
  EXPECT_EQ(LoadedState(repository, "iris"), ModelState::kReady);
  layout->reset();
  EXPECT_FALSE(fs::exists(repository));
  EXPECT_TRUE(fs::is_regular_file(source_ / "model.onnx")) << "the source was touched";
}

TEST_F(SingleModelLayoutTest, AnyOnnxFileNameWithItsConfigBesideIt) {
  fs::copy_file(kData / "add_fp32.onnx", source_ / "exported.onnx");
  std::ofstream(source_ / "config.yaml") << "backend: onnx\nmax_batch_size: 0\n";
  auto layout = SingleModelLayout::Create(source_, "adder", scratch_);
  ASSERT_TRUE(layout.ok()) << layout.status().ToString();
  EXPECT_TRUE(fs::is_symlink((*layout)->repository() / "adder" / "config.yaml"));
  EXPECT_EQ(LoadedState((*layout)->repository(), "adder"), ModelState::kReady);
}

TEST_F(SingleModelLayoutTest, AModelDirectoryIsLinkedWhole) {
  std::ofstream(source_ / "config.yaml") << "backend: onnx\n";
  fs::create_directories(source_ / "3");
  fs::copy_file(kData / "add_fp32.onnx", source_ / "3" / "model.onnx");
  auto layout = SingleModelLayout::Create(source_, "adder", scratch_);
  ASSERT_TRUE(layout.ok()) << layout.status().ToString();
  EXPECT_TRUE(fs::is_symlink((*layout)->repository() / "adder"));
  ModelManager models;
  ModelRepository repo((*layout)->repository(), {{"onnx", factory_}}, &models);
  ASSERT_TRUE(repo.LoadAll().ok());
  ASSERT_TRUE(models.Find("adder").has_value());
  EXPECT_EQ(models.Find("adder")->versions.front().version, 3);
}

TEST_F(SingleModelLayoutTest, VersionDirectoriesWithoutAConfig) {
  fs::create_directories(source_ / "2");
  fs::copy_file(kData / "add_fp32.onnx", source_ / "2" / "model.onnx");
  auto layout = SingleModelLayout::Create(source_, "adder", scratch_);
  ASSERT_TRUE(layout.ok()) << layout.status().ToString();
  EXPECT_EQ(LoadedState((*layout)->repository(), "adder"), ModelState::kReady);
}

TEST_F(SingleModelLayoutTest, ARepositoryHoldingTheModelIsUsedAsItIs) {
  fs::create_directories(source_ / "adder" / "1");
  auto layout = SingleModelLayout::Create(source_, "adder", scratch_);
  ASSERT_TRUE(layout.ok()) << layout.status().ToString();
  EXPECT_EQ((*layout)->repository(), source_);
  layout->reset();
  EXPECT_TRUE(fs::is_directory(source_ / "adder"));
}

TEST_F(SingleModelLayoutTest, OtherLayoutsAreRefusedNamingWhatIsExpected) {
  auto empty = SingleModelLayout::Create(source_, "adder", scratch_);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(empty.status().message(), HasSubstr("exactly one .onnx file (found 0)"));

  fs::copy_file(kData / "add_fp32.onnx", source_ / "a.onnx");
  fs::copy_file(kData / "add_fp32.onnx", source_ / "b.onnx");
  auto two = SingleModelLayout::Create(source_, "adder", scratch_);
  ASSERT_FALSE(two.ok());
  EXPECT_THAT(two.status().message(), HasSubstr("(found 2)"));

  auto missing = SingleModelLayout::Create(root_ / "nowhere", "adder", scratch_);
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound);

  auto bad_name = SingleModelLayout::Create(source_, "../adder", scratch_);
  ASSERT_FALSE(bad_name.ok());
  EXPECT_THAT(bad_name.status().message(), HasSubstr("--model-name"));
  EXPECT_TRUE(fs::is_empty(scratch_)) << "a refused layout left a directory behind";
}

}  // namespace
}  // namespace berth
