// The cloud container contracts Berth can also speak (--platform): Amazon
// SageMaker, Google Vertex AI and Azure Machine Learning. Each platform
// starts the container with its own environment; this file turns that
// environment into ServerOptions (address, port, model location, routes).
// The routes are in server/http/cloud_routes.h; docs/platforms.md describes
// each contract.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace berth {

struct ServerOptions;

enum class Platform { kNone, kSageMaker, kVertex, kAzure };

// "sagemaker", "vertex", "azure", or "none" / "" for kNone. False for any
// other name.
bool ParsePlatform(std::string_view name, Platform* platform);
std::string_view PlatformName(Platform platform);

struct PlatformOptions {
  Platform platform = Platform::kNone;
  // The model that answers a platform route when the request names none;
  // empty: the repository's only model.
  std::string default_model;
  // Vertex AI's health and predict routes (AIP_HEALTH_ROUTE,
  // AIP_PREDICT_ROUTE); these defaults serve when the variables are unset.
  std::string health_route = "/health";
  std::string predict_route = "/predict";
};

// An environment variable's value, or nullptr when it is unset. Injected so
// that tests need not touch the process environment.
using GetEnv = std::function<const char*(const char*)>;

// The serve flags the command line set; they win over the platform.
struct ExplicitFlags {
  bool host = false;
  bool http_port = false;
  bool model_repository = false;
};

// Fills in what options->platform.platform decides and `given` leaves open:
//   every platform  host 0.0.0.0 (the platform reaches the container from outside)
//   sagemaker       port $SAGEMAKER_BIND_TO_PORT or 8080; repository /opt/ml/model
//   vertex          port $AIP_HTTP_PORT or 8080; repository $AIP_STORAGE_URI
//                   (a local path; gs:// is not supported yet); routes
//                   $AIP_HEALTH_ROUTE and $AIP_PREDICT_ROUTE
//   azure           port 5001; repository $AZUREML_MODEL_DIR
// InvalidArgument for a malformed port or route in the environment,
// Unimplemented for a gs:// AIP_STORAGE_URI that the repository would come from.
Status ApplyPlatformEnvironment(const GetEnv& env, const ExplicitFlags& given,
                                ServerOptions* options);

}  // namespace berth
