// The drift routes (docs/monitoring.md):
//   GET    /v2/models/{m}[/versions/{v}]/drift      the window against the baseline
//   GET    /v2/models/{m}[/versions/{v}]/baseline   the baseline in use
//   POST   /v2/models/{m}[/versions/{v}]/baseline   set it: {"profile": {...}} or
//                                                   {"from_window": true}, + "reason"
//   DELETE /v2/models/{m}[/versions/{v}]/baseline   back to the metadata's
// Setting and clearing are changes: the admin check applies, and the
// baseline is kept in the registry store.
#pragma once

#include "monitoring/drift/drift_monitor.h"
#include "server/http/json_tensor.h"
#include "server/http/router.h"
#include "server/server_context.h"

namespace berth::http {

// Neither pointer is owned; both outlive the router.
void RegisterDriftRoutes(drift::DriftMonitor* monitor, const ServerContext* ctx, Router* router);

// Unix milliseconds as RFC 3339 UTC with milliseconds; null when 0.
void WriteUnixMsTime(JsonWriter* w, int64_t unix_ms);

// The report's JSON (the drift route's body).
std::string WriteDriftReport(const std::string& model, int64_t version,
                             const drift::DriftReport& report);

}  // namespace berth::http
