#include "server/platform.h"

#include <charconv>

#include "server/server.h"

namespace berth {
namespace {

constexpr int kSageMakerPort = 8080;  // SageMaker's contract
constexpr int kVertexPort = 8080;     // Vertex AI's default containerSpec port
constexpr int kAzurePort = 5001;      // the Azure ML inference server's port
constexpr const char* kSageMakerModelDir = "/opt/ml/model";

std::string_view Env(const GetEnv& env, const char* name) {
  const char* value = env(name);
  return value == nullptr ? std::string_view() : std::string_view(value);
}

// `fallback` when the variable is unset or empty, else its value as a port.
StatusOr<int> PortFromEnv(const GetEnv& env, const char* name, int fallback) {
  const std::string_view value = Env(env, name);
  if (value.empty()) return fallback;
  int port = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), port);
  if (ec != std::errc() || end != value.data() + value.size() || port < 1 || port > 65535) {
    return Status::InvalidArgument(std::string(name) + "='" + std::string(value) +
                                   "' is not a TCP port (1-65535)");
  }
  return port;
}

// A route from the environment: an absolute path the router can match
// literally ('{' would start a capture).
Status RouteFromEnv(const GetEnv& env, const char* name, std::string* route) {
  const std::string_view value = Env(env, name);
  if (value.empty()) return Status::Ok();
  if (value.front() != '/' || value.find_first_of("{}?# ") != std::string_view::npos) {
    return Status::InvalidArgument(std::string(name) + "='" + std::string(value) +
                                   "' is not a route: it must start with '/' and contain no "
                                   "'{', '}', '?', '#' or space");
  }
  *route = std::string(value);
  return Status::Ok();
}

}  // namespace

bool ParsePlatform(std::string_view name, Platform* platform) {
  if (name.empty() || name == "none") {
    *platform = Platform::kNone;
  } else if (name == "sagemaker") {
    *platform = Platform::kSageMaker;
  } else if (name == "vertex") {
    *platform = Platform::kVertex;
  } else if (name == "azure") {
    *platform = Platform::kAzure;
  } else {
    return false;
  }
  return true;
}

std::string_view PlatformName(Platform platform) {
  switch (platform) {
    case Platform::kNone: return "none";
    case Platform::kSageMaker: return "sagemaker";
    case Platform::kVertex: return "vertex";
    case Platform::kAzure: return "azure";
  }
  return "none";
}

Status ApplyPlatformEnvironment(const GetEnv& env, const ExplicitFlags& given,
                                ServerOptions* options) {
  PlatformOptions& platform = options->platform;
  if (platform.platform == Platform::kNone) return Status::Ok();
  if (!given.host) options->host = "0.0.0.0";
  int port = 0;
  std::string repository;
  switch (platform.platform) {
    case Platform::kSageMaker: {
      // SAGEMAKER_BIND_TO_PORT is set when the container runs in an inference pipeline.
      ASSIGN_OR_RETURN(port, PortFromEnv(env, "SAGEMAKER_BIND_TO_PORT", kSageMakerPort));
      repository = kSageMakerModelDir;
      break;
    }
    case Platform::kVertex: {
      ASSIGN_OR_RETURN(port, PortFromEnv(env, "AIP_HTTP_PORT", kVertexPort));
      RETURN_IF_ERROR(RouteFromEnv(env, "AIP_HEALTH_ROUTE", &platform.health_route));
      RETURN_IF_ERROR(RouteFromEnv(env, "AIP_PREDICT_ROUTE", &platform.predict_route));
      const std::string_view uri = Env(env, "AIP_STORAGE_URI");
      if (!given.model_repository && uri.find("://") != std::string_view::npos) {
        return Status::Unimplemented(
            "AIP_STORAGE_URI='" + std::string(uri) +
            "': reading models from cloud storage is not supported yet; copy the model "
            "repository into the image (or a mounted volume) and pass --model-repository");
      }
      repository = std::string(uri);
      break;
    }
    case Platform::kAzure: {
      port = kAzurePort;
      repository = std::string(Env(env, "AZUREML_MODEL_DIR"));
      break;
    }
    case Platform::kNone: break;
  }
  if (!given.http_port) options->http_port = port;
  if (!given.model_repository && !repository.empty()) options->model_repository = repository;
  return Status::Ok();
}

}  // namespace berth
