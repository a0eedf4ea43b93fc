#include "core/model_statistics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace berth {
namespace {

using ::testing::HasSubstr;

// Statistics that name what they were asked for; execution_count is the
// version, so that a test can tell the versions apart.
class NamingSource final : public StatisticsSource {
 public:
  ModelStatistics Statistics(const std::string& name, const std::string& version) const override {
    ModelStatistics s;
    s.name = name;
    s.version = version;
    s.execution_count = std::stoull(version);
    return s;
  }
};

ModelEntry Entry(const std::string& name, std::vector<std::pair<int64_t, ModelState>> versions) {
  ModelEntry e;
  e.name = name;
  for (const auto& [v, state] : versions) {
    std::shared_ptr<Model> model;
    if (state == ModelState::kReady) {
      model = std::make_shared<Model>();
      model->name = name;
      model->version = v;
    }
    e.versions.push_back({v, state, state == ModelState::kReady ? "" : "broken", model});
  }
  return e;
}

std::vector<std::string> Names(const std::vector<ModelStatistics>& stats) {
  std::vector<std::string> out;
  for (const auto& s : stats) out.push_back(s.name + ":" + s.version);
  return out;
}

class ModelStatisticsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    models_.Set(Entry("b", {{1, ModelState::kReady}, {2, ModelState::kUnavailable},
                            {3, ModelState::kReady}}));
    models_.Set(Entry("a", {{5, ModelState::kReady}}));
    models_.Set(Entry("broken", {{1, ModelState::kUnavailable}}));
    ModelEntry aliased = Entry("c", {{1, ModelState::kReady}, {2, ModelState::kReady}});
    aliased.aliases["production"] = 1;
    models_.Set(aliased);
  }

  StatusOr<std::vector<ModelStatistics>> Get(std::string_view name, std::string_view version) {
    return GetModelStatistics(models_, source_, name, version);
  }

  ModelManager models_;
  NamingSource source_;
};

TEST_F(ModelStatisticsTest, EveryReadyVersionOfEveryModel) {
  auto stats = Get("", "");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(Names(*stats), (std::vector<std::string>{"a:5", "b:1", "b:3", "c:1", "c:2"}));
}

TEST_F(ModelStatisticsTest, EveryReadyVersionOfOneModel) {
  auto stats = Get("b", "");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(Names(*stats), (std::vector<std::string>{"b:1", "b:3"}));
  EXPECT_EQ((*stats)[1].execution_count, 3u);
}

TEST_F(ModelStatisticsTest, OneVersionByNumberOrAlias) {
  auto stats = Get("b", "3");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(Names(*stats), (std::vector<std::string>{"b:3"}));
  stats = Get("c", "production");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(Names(*stats), (std::vector<std::string>{"c:1"}));
}

TEST_F(ModelStatisticsTest, UnknownOrUnreadyModelsAndVersionsSayTritonsWords) {
  struct Case {
    std::string name, version, words;
  };
  for (const Case& c : std::vector<Case>{
           {"nope", "", "requested model 'nope' is not available (model 'nope' is not in the "
                        "repository)"},
           {"broken", "", "requested model 'broken' is not available (model 'broken' has no "
                          "ready version)"},
           {"nope", "1", "requested model 'nope' is not available"},
           {"b", "2", "requested model version is not available for model 'b' (version 2 of "
                      "model 'b' is UNAVAILABLE: broken)"},
           {"b", "7", "requested model version is not available for model 'b' (model 'b' has no "
                      "version '7')"},
           {"b", "staging", "requested model version is not available for model 'b' (model 'b' "
                            "has no version or alias 'staging')"},
       }) {
    auto stats = Get(c.name, c.version);
    ASSERT_FALSE(stats.ok()) << c.name << "/" << c.version;
    EXPECT_EQ(stats.status().code(), Status::Code::kNotFound) << c.name << "/" << c.version;
    EXPECT_THAT(stats.status().message(), HasSubstr(c.words));
  }
}

TEST_F(ModelStatisticsTest, MalformedNamesAndVersionsAreRefused) {
  EXPECT_EQ(Get("../etc", "").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(Get("b", "03").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(Get("b", "-1").status().code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace berth
