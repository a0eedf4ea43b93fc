// berth::Status <-> grpc::Status. The codes are the gRPC canonical codes of
// the same name, so the mapping is one-to-one; the message is kept verbatim.
#pragma once

#include <grpcpp/support/status.h>

#include "core/status.h"

namespace berth::rpc {

grpc::StatusCode GrpcStatusCodeFor(Status::Code code);

grpc::Status ToGrpcStatus(const Status& status);

}  // namespace berth::rpc
