#include "server/grpc/grpc_status.h"

#include <gtest/gtest.h>

namespace berth::rpc {
namespace {

TEST(GrpcStatusTest, MapsEveryCodeToTheCanonicalGrpcCode) {
  EXPECT_TRUE(ToGrpcStatus(Status::Ok()).ok());
  const grpc::Status s = ToGrpcStatus(Status::InvalidArgument("bad shape"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "bad shape");
  EXPECT_EQ(GrpcStatusCodeFor(Status::Code::kNotFound), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(GrpcStatusCodeFor(Status::Code::kAlreadyExists), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(GrpcStatusCodeFor(Status::Code::kFailedPrecondition),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(GrpcStatusCodeFor(Status::Code::kResourceExhausted),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(GrpcStatusCodeFor(Status::Code::kUnavailable), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(GrpcStatusCodeFor(Status::Code::kUnimplemented), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(GrpcStatusCodeFor(Status::Code::kInternal), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(GrpcStatusCodeFor(Status::Code::kPermissionDenied), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(GrpcStatusCodeFor(Status::Code::kAborted), grpc::StatusCode::ABORTED);
  EXPECT_EQ(GrpcStatusCodeFor(Status::Code::kDeadlineExceeded), grpc::StatusCode::DEADLINE_EXCEEDED);
}

}  // namespace
}  // namespace berth::rpc
