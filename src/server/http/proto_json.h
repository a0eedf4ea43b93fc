// Writes a protobuf message as JSON the way Triton's HTTP endpoints show
// protobuf-defined objects (the model configuration): proto field names,
// enums by name, every scalar and repeated field (defaults included),
// message fields and oneof members only when set, and 64-bit integers as JSON
// numbers (protobuf's
// own JSON mapping writes them as strings, which Triton's clients do not
// expect).
#pragma once

#include <google/protobuf/message.h>

#include <string>

namespace berth::http {

std::string ProtoToJson(const google::protobuf::Message& message);

}  // namespace berth::http
