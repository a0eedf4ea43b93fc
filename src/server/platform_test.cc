#include "server/platform.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "server/server.h"

namespace berth {
namespace {

using ::testing::HasSubstr;

GetEnv Environment(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

ServerOptions Apply(Platform platform, std::map<std::string, std::string> env,
                    ExplicitFlags given = {}) {
  ServerOptions options;
  options.platform.platform = platform;
  Status s = ApplyPlatformEnvironment(Environment(std::move(env)), given, &options);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return options;
}

Status ApplyError(Platform platform, std::map<std::string, std::string> env) {
  ServerOptions options;
  options.platform.platform = platform;
  return ApplyPlatformEnvironment(Environment(std::move(env)), {}, &options);
}

TEST(ParsePlatformTest, KnownNames) {
  Platform p = Platform::kAzure;
  EXPECT_TRUE(ParsePlatform("", &p));
  EXPECT_EQ(p, Platform::kNone);
  EXPECT_TRUE(ParsePlatform("sagemaker", &p));
  EXPECT_EQ(p, Platform::kSageMaker);
  EXPECT_TRUE(ParsePlatform("vertex", &p));
  EXPECT_EQ(p, Platform::kVertex);
  EXPECT_TRUE(ParsePlatform("azure", &p));
  EXPECT_EQ(p, Platform::kAzure);
  EXPECT_TRUE(ParsePlatform("none", &p));
  EXPECT_EQ(p, Platform::kNone);
  EXPECT_FALSE(ParsePlatform("SageMaker", &p));
  EXPECT_FALSE(ParsePlatform("gcp", &p));
  EXPECT_EQ(PlatformName(Platform::kVertex), "vertex");
}

TEST(ApplyPlatformEnvironmentTest, NoPlatformChangesNothing) {
  ServerOptions options = Apply(Platform::kNone, {{"AIP_HTTP_PORT", "9999"}});
  EXPECT_EQ(options.host, "127.0.0.1");
  EXPECT_EQ(options.http_port, 8000);
}

TEST(ApplyPlatformEnvironmentTest, SageMakerDefaults) {
  ServerOptions options = Apply(Platform::kSageMaker, {});
  EXPECT_EQ(options.host, "0.0.0.0");
  EXPECT_EQ(options.http_port, 8080);
  EXPECT_EQ(options.model_repository, "/opt/ml/model");
  EXPECT_EQ(Apply(Platform::kSageMaker, {{"SAGEMAKER_BIND_TO_PORT", "9123"}}).http_port, 9123);
}

TEST(ApplyPlatformEnvironmentTest, ExplicitFlagsWin) {
  ServerOptions options;
  options.host = "127.0.0.1";
  options.http_port = 7000;
  options.model_repository = "/models";
  options.platform.platform = Platform::kVertex;
  ExplicitFlags given{.host = true, .http_port = true, .model_repository = true};
  Status s = ApplyPlatformEnvironment(
      Environment({{"AIP_HTTP_PORT", "9000"}, {"AIP_STORAGE_URI", "gs://bucket/model"}}), given,
      &options);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(options.host, "127.0.0.1");
  EXPECT_EQ(options.http_port, 7000);
  EXPECT_EQ(options.model_repository, "/models");
}

TEST(ApplyPlatformEnvironmentTest, VertexReadsItsEnvironment) {
  ServerOptions options =
      Apply(Platform::kVertex, {{"AIP_HTTP_PORT", "8500"},
                                {"AIP_HEALTH_ROUTE", "/v1/endpoints/1/deployedModels/2"},
                                {"AIP_PREDICT_ROUTE", "/v1/endpoints/1/deployedModels/2:predict"},
                                {"AIP_STORAGE_URI", "/mnt/models"}});
  EXPECT_EQ(options.host, "0.0.0.0");
  EXPECT_EQ(options.http_port, 8500);
  EXPECT_EQ(options.platform.health_route, "/v1/endpoints/1/deployedModels/2");
  EXPECT_EQ(options.platform.predict_route, "/v1/endpoints/1/deployedModels/2:predict");
  EXPECT_EQ(options.model_repository, "/mnt/models");

  ServerOptions defaults = Apply(Platform::kVertex, {});
  EXPECT_EQ(defaults.http_port, 8080);
  EXPECT_EQ(defaults.platform.health_route, "/health");
  EXPECT_EQ(defaults.platform.predict_route, "/predict");
}

TEST(ApplyPlatformEnvironmentTest, VertexCloudStorageIsNotSupportedYet) {
  Status s = ApplyError(Platform::kVertex, {{"AIP_STORAGE_URI", "gs://bucket/model"}});
  EXPECT_EQ(s.code(), Status::Code::kUnimplemented);
  EXPECT_THAT(s.message(), HasSubstr("AIP_STORAGE_URI='gs://bucket/model'"));
  EXPECT_THAT(s.message(), HasSubstr("--model-repository"));
}

TEST(ApplyPlatformEnvironmentTest, RefusesMalformedPortsAndRoutes) {
  EXPECT_THAT(ApplyError(Platform::kVertex, {{"AIP_HTTP_PORT", "80a"}}).message(),
              HasSubstr("AIP_HTTP_PORT='80a' is not a TCP port"));
  EXPECT_THAT(ApplyError(Platform::kVertex, {{"AIP_HTTP_PORT", "70000"}}).message(),
              HasSubstr("not a TCP port"));
  EXPECT_THAT(ApplyError(Platform::kSageMaker, {{"SAGEMAKER_BIND_TO_PORT", "0"}}).message(),
              HasSubstr("SAGEMAKER_BIND_TO_PORT='0'"));
  EXPECT_THAT(ApplyError(Platform::kVertex, {{"AIP_PREDICT_ROUTE", "predict"}}).message(),
              HasSubstr("AIP_PREDICT_ROUTE='predict' is not a route"));
  EXPECT_THAT(ApplyError(Platform::kVertex, {{"AIP_HEALTH_ROUTE", "/models/{m}"}}).message(),
              HasSubstr("is not a route"));
}

TEST(ApplyPlatformEnvironmentTest, AzureDefaults) {
  ServerOptions options = Apply(Platform::kAzure, {{"AZUREML_MODEL_DIR", "/var/azureml-app/m"}});
  EXPECT_EQ(options.host, "0.0.0.0");
  EXPECT_EQ(options.http_port, 5001);
  EXPECT_EQ(options.model_repository, "/var/azureml-app/m");
  EXPECT_EQ(Apply(Platform::kAzure, {}).model_repository, "");
}

}  // namespace
}  // namespace berth
