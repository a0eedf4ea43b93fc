// GET /v2/alerts (scope read): the alert rules in effect and the state of
// each rule on each model version (docs/monitoring.md#alerts).
#pragma once

#include <string>

#include "monitoring/alerts/alert_manager.h"
#include "server/http/router.h"

namespace berth::http {

// `alerts` is not owned and outlives the router.
void RegisterAlertsRoutes(const alerts::AlertManager* alerts, Router* router);

// The route's body.
std::string WriteAlerts(const alerts::AlertManager& alerts);

}  // namespace berth::http
