// The payload log's events: CloudEvents 1.0 as KServe's inference logger
// writes them (type org.kubeflow.serving.inference.request / .response, the
// request's id as the event id, extension attributes inferenceservicename,
// component, endpoint), so that sinks built for KServe read Berth's too.
// The data is the request's inputs or the response's outputs in the KServe
// v2 JSON form; a redacted tensor keeps its name, datatype and shape and
// its data is the string "[redacted]".
#pragma once

#include <chrono>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/inference_timings.h"
#include "core/status.h"
#include "core/tensor.h"

namespace berth::logs {

inline constexpr const char* kRequestEventType = "org.kubeflow.serving.inference.request";
inline constexpr const char* kResponseEventType = "org.kubeflow.serving.inference.response";

// One event, before it is encoded.
struct PayloadEvent {
  std::string id;    // the request's id (or one the log made)
  std::string type;  // kRequestEventType or kResponseEventType
  std::string model;
  std::string version;
  Protocol protocol = Protocol::kUnknown;
  std::chrono::system_clock::time_point time;
  std::string data;  // JSON
};

// `tensors` as a v2 JSON array ([{"name", "datatype", "shape", "data"}]);
// the data of a tensor named in `redact` is "[redacted]" (the caller need
// not have kept it). Non-finite floats are null; bytes of a BYTES element
// that are not UTF-8 become '?'.
std::string TensorsJson(const std::vector<Tensor>& tensors, const std::set<std::string>& redact);

// The event's source attribute: /v2/models/{model}/versions/{version}.
std::string EventSource(const PayloadEvent& event);

// Structured mode: one JSON object (no newline) with the attributes and
// `data` inline (datacontenttype application/json).
std::string StructuredEvent(const PayloadEvent& event);

// Binary mode, as KServe's logger POSTs: the attributes as ce-* headers;
// the body is event.data, with Content-Type application/json.
std::vector<std::pair<std::string, std::string>> BinaryHeaders(const PayloadEvent& event);

}  // namespace berth::logs
