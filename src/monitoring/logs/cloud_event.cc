#include "monitoring/logs/cloud_event.h"

#include <charconv>
#include <cmath>
#include <cstring>

#include "core/float16.h"
#include "core/logging.h"
#include "core/model_name.h"

namespace berth::logs {
namespace {

template <typename T>
T Load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <typename T>
void AppendNumber(std::string* out, T v) {
  if constexpr (std::is_floating_point_v<T>) {
    if (!std::isfinite(v)) {
      *out += "null";
      return;
    }
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, end);
}

void AppendData(std::string* out, const Tensor& t) {
  out->push_back('[');
  if (t.datatype() == DataType::kBytes) {
    bool first = true;
    for (const std::string& s : t.strings()) {
      if (!first) out->push_back(',');
      first = false;
      AppendJsonString(out, IsValidUtf8(s) ? s : PrintableExcerpt(s, s.size()));
    }
    out->push_back(']');
    return;
  }
  const size_t width = DataTypeByteSize(t.datatype());
  const std::vector<std::byte>& bytes = t.bytes();
  for (size_t i = 0; width > 0 && i + width <= bytes.size(); i += width) {
    if (i > 0) out->push_back(',');
    const std::byte* p = bytes.data() + i;
    switch (t.datatype()) {
      case DataType::kBool:
        *out += p[0] != std::byte{0} ? "true" : "false";
        break;
      case DataType::kUint8:
        AppendNumber(out, Load<uint8_t>(p));
        break;
      case DataType::kUint16:
        AppendNumber(out, Load<uint16_t>(p));
        break;
      case DataType::kUint32:
        AppendNumber(out, Load<uint32_t>(p));
        break;
      case DataType::kUint64:
        AppendNumber(out, Load<uint64_t>(p));
        break;
      case DataType::kInt8:
        AppendNumber(out, Load<int8_t>(p));
        break;
      case DataType::kInt16:
        AppendNumber(out, Load<int16_t>(p));
        break;
      case DataType::kInt32:
        AppendNumber(out, Load<int32_t>(p));
        break;
      case DataType::kInt64:
        AppendNumber(out, Load<int64_t>(p));
        break;
      case DataType::kFp16:
        AppendNumber(out, HalfToFloat(Load<uint16_t>(p)));
        break;
      case DataType::kFp32:
        AppendNumber(out, Load<float>(p));
        break;
      case DataType::kFp64:
        AppendNumber(out, Load<double>(p));
        break;
      default:
        *out += "null";
        break;
    }
  }
  out->push_back(']');
}

void AppendAttribute(std::string* out, std::string_view key, std::string_view value) {
  AppendJsonString(out, key);
  out->push_back(':');
  AppendJsonString(out, IsValidUtf8(value) ? std::string(value) : PrintableExcerpt(value, 256));
  out->push_back(',');
}

}  // namespace

std::string TensorsJson(const std::vector<Tensor>& tensors, const std::set<std::string>& redact) {
  std::string out = "[";
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (i > 0) out.push_back(',');
    out += "{\"name\":";
    AppendJsonString(&out, t.name());
    out += ",\"datatype\":";
    AppendJsonString(&out, DataTypeName(t.datatype()));
    out += ",\"shape\":[";
    for (size_t d = 0; d < t.shape().size(); ++d) {
      if (d > 0) out.push_back(',');
      out += std::to_string(t.shape()[d]);
    }
    out += "],\"data\":";
    if (redact.contains(t.name())) {
      out += "\"[redacted]\"";
    } else {
      AppendData(&out, t);
    }
    out.push_back('}');
  }
  out.push_back(']');
  return out;
}

std::string EventSource(const PayloadEvent& e) {
  return "/v2/models/" + e.model + "/versions/" + e.version;
}

std::string StructuredEvent(const PayloadEvent& e) {
  std::string out = "{";
  AppendAttribute(&out, "specversion", "1.0");
  AppendAttribute(&out, "id", e.id);
  AppendAttribute(&out, "source", EventSource(e));
  AppendAttribute(&out, "type", e.type);
  AppendAttribute(&out, "time", FormatTimestamp(e.time));
  AppendAttribute(&out, "datacontenttype", "application/json");
  AppendAttribute(&out, "inferenceservicename", e.model);
  AppendAttribute(&out, "component", "predictor");
  AppendAttribute(&out, "endpoint", e.version);
  AppendAttribute(&out, "protocol", ProtocolName(e.protocol));
  out += "\"data\":";
  out += e.data;
  out.push_back('}');
  return out;
}

std::vector<std::pair<std::string, std::string>> BinaryHeaders(const PayloadEvent& e) {
  // Header values must not hold CR or LF: the model name cannot (it is
  // validated), and an id is made printable.
  return {{"ce-specversion", "1.0"},
          {"ce-id", PrintableExcerpt(e.id, 256)},
          {"ce-source", EventSource(e)},
          {"ce-type", e.type},
          {"ce-time", FormatTimestamp(e.time)},
          {"ce-inferenceservicename", e.model},
          {"ce-component", "predictor"},
          {"ce-endpoint", e.version},
          {"ce-protocol", ProtocolName(e.protocol)}};
}

}  // namespace berth::logs
