// The feedback routes (docs/monitoring.md "Accuracy from ground truth"):
//   POST /v2/models/{m}[/versions/{v}]/feedback   ground truth for earlier
//        predictions: {"feedback": [{"id": ..., "row": k, "label"|"value":
//        ...}]}
//        -> {"joined", "unknown", "duplicate", "late"}; scope infer (the
//        caller that predicts sends the truth)
//   GET  /v2/models/{m}[/versions/{v}]/accuracy   the version's rolling metrics
//        next to its registered ones; scope read
#pragma once

#include <string>
#include <vector>

#include "monitoring/feedback/feedback_monitor.h"
#include "server/http/router.h"
#include "server/server_context.h"

namespace berth::http {

// Neither pointer is owned; both outlive the router.
void RegisterFeedbackRoutes(feedback::FeedbackMonitor* monitor, const ServerContext* ctx,
                            Router* router);

// A feedback body's items, checked: InvalidArgument naming the first fault.
StatusOr<std::vector<FeedbackItem>> ParseFeedbackRequest(std::string_view body);

}  // namespace berth::http
