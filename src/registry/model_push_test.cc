// ModelRepository::Push with the model's config (registry/model_push.cc),
// against the real ONNX Runtime backend and a SQLite store: a first push
// makes the config the model's; a bad one is refused and stores nothing; a
// push to an existing model may repeat its config, never change it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>

#include "backends/onnxruntime/onnxruntime_backend.h"
#include "registry/config_parser.h"
#include "registry/model_repository.h"

namespace berth {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const fs::path kData = BERTH_TEST_DATA_DIR;

class PushConfigTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { factory_ = CreateOnnxRuntimeFactory().release(); }
  static void TearDownTestSuite() {
    delete factory_;
    factory_ = nullptr;
  }

  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "berth_push_config_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    auto store = OpenSqliteRegistryStore((root_ / ".berth-test-registry.db").string());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    repo_ = std::make_unique<ModelRepository>(
        root_, std::map<std::string, BackendFactory*>{{"onnx", factory_}}, &manager_,
        store_.get());
    std::ifstream in(kData / "add_fp32.onnx", std::ios::binary);
    artifact_.assign(std::istreambuf_iterator<char>(in), {});
  }
  void TearDown() override {
    repo_.reset();
    manager_.Remove("add");
    store_.reset();
    fs::remove_all(root_);
  }

  StatusOr<int64_t> Push(std::string_view config) {
    return repo_->Push("add", artifact_, "", "test", false, "", config);
  }

  std::string ConfigText() {
    std::ifstream in(root_ / "add" / "config.yaml");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  // The config of the version serving by default.
  ModelConfig Serving() {
    auto entry = manager_.Find("add");
    if (!entry || entry->Default() == nullptr || entry->Default()->model == nullptr) {
      ADD_FAILURE() << "add does not serve";
      return {};
    }
    return entry->Default()->model->config;
  }

  static BackendFactory* factory_;
  fs::path root_;
  ModelManager manager_;
  std::unique_ptr<RegistryStore> store_;
  std::unique_ptr<ModelRepository> repo_;
  std::string artifact_;
};

BackendFactory* PushConfigTest::factory_ = nullptr;

TEST_F(PushConfigTest, AFirstPushMakesTheConfigTheModels) {
  // `name` may be given (it is the model's); the file keeps the text as sent.
  const std::string config = "name: add\nallow_nan: true\nversion_policy: {all: true}\n\n\n";
  StatusOr<int64_t> pushed = Push(config);
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  EXPECT_EQ(*pushed, 1);
  EXPECT_EQ(ConfigText(), "name: add\nallow_nan: true\nversion_policy: {all: true}\n");
  StatusOr<ModelConfig> loaded = LoadModelConfig(root_ / "add");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_TRUE(loaded->allow_nan);
  EXPECT_TRUE(Serving().allow_nan);
  EXPECT_EQ(Serving().version_policy.kind, VersionPolicy::Kind::kAll);
}

TEST_F(PushConfigTest, APushWithoutAConfigStillGetsTheDefaults) {
  ASSERT_TRUE(Push("").ok());
  EXPECT_EQ(ConfigText(), "{}\n");
}

TEST_F(PushConfigTest, ABadConfigIsRefusedNamingTheProblemAndStoresNothing) {
  const struct {
    std::string config;
    std::string problem;
  } cases[] = {
      {"max_batch_size: [1\n", "the pushed config: "},
      {"no_such_field: 1\n", "no_such_field"},
      {"max_batch_size: many\n", "max_batch_size"},
      {"name: other\n", "the pushed config names model 'other', not 'add'"},
      {"backend: tensorflow\n", "the pushed config: "},
      {std::string("allow_nan: true\n\0", 17), "UTF-8 text without NUL bytes"},
      {"allow_nan: \xff\n", "UTF-8 text without NUL bytes"},
      {std::string((1u << 20) + 1, '#'), "over 1 MiB"},
  };
  for (const auto& c : cases) {
    StatusOr<int64_t> pushed = Push(c.config);
    ASSERT_FALSE(pushed.ok()) << c.problem;
    EXPECT_NE(pushed.status().code(), Status::Code::kInternal) << pushed.status().ToString();
    EXPECT_NE(pushed.status().code(), Status::Code::kAborted) << pushed.status().ToString();
    EXPECT_THAT(pushed.status().message(), HasSubstr(c.problem));
    EXPECT_FALSE(fs::exists(root_ / "add"));
    EXPECT_FALSE(fs::exists(root_ / ".push-model-add"));
    EXPECT_FALSE(manager_.Find("add").has_value());
    auto versions = store_->Versions("add");
    ASSERT_TRUE(versions.ok());
    EXPECT_TRUE(versions->empty());
  }
}

TEST_F(PushConfigTest, AnExistingModelTakesItsOwnConfigAgainButNoOther) {
  const std::string config = "allow_nan: true\n";
  ASSERT_TRUE(Push(config).ok());
  // The same text (trailing white space aside): a new version.
  StatusOr<int64_t> again = Push("allow_nan: true");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, 2);
  // Another config: refused before a version is made, the model unchanged.
  StatusOr<int64_t> other = Push("allow_nan: false\n");
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), Status::Code::kAborted);
  EXPECT_THAT(other.status().message(),
              StartsWith("the pushed config differs from model 'add''s config (add/config.yaml)"));
  EXPECT_THAT(other.status().message(), HasSubstr("push without a config"));
  EXPECT_EQ(ConfigText(), config);
  EXPECT_FALSE(fs::exists(root_ / "add" / "3"));
  auto versions = store_->Versions("add");
  ASSERT_TRUE(versions.ok());
  EXPECT_EQ(versions->size(), 2u);
  EXPECT_TRUE(Serving().allow_nan);
  // A bad config is a 400 whatever the model's: checked first.
  StatusOr<int64_t> bad = Push("allow_nan: maybe\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument);
  // Without a config the push goes on as always.
  StatusOr<int64_t> plain = Push("");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(*plain, 3);
}

}  // namespace
}  // namespace berth
