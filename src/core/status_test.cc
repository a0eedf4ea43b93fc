#include "core/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace berth {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kOk);
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_TRUE(Status::Ok().ok());
}

TEST(StatusTest, FactoriesSetCodeAndMessage) {
  struct Case {
    Status status;
    Status::Code code;
    const char* name;
  };
  const Case cases[] = {
      {Status::InvalidArgument("m"), Status::Code::kInvalidArgument, "INVALID_ARGUMENT"},
      {Status::NotFound("m"), Status::Code::kNotFound, "NOT_FOUND"},
      {Status::AlreadyExists("m"), Status::Code::kAlreadyExists, "ALREADY_EXISTS"},
      {Status::FailedPrecondition("m"), Status::Code::kFailedPrecondition,
       "FAILED_PRECONDITION"},
      {Status::ResourceExhausted("m"), Status::Code::kResourceExhausted, "RESOURCE_EXHAUSTED"},
      {Status::Unavailable("m"), Status::Code::kUnavailable, "UNAVAILABLE"},
      {Status::Unimplemented("m"), Status::Code::kUnimplemented, "UNIMPLEMENTED"},
      {Status::Internal("m"), Status::Code::kInternal, "INTERNAL"},
      {Status::PermissionDenied("m"), Status::Code::kPermissionDenied, "PERMISSION_DENIED"},
      {Status::Aborted("m"), Status::Code::kAborted, "ABORTED"},
      {Status::DeadlineExceeded("m"), Status::Code::kDeadlineExceeded, "DEADLINE_EXCEEDED"},
  };
  for (const Case& c : cases) {
    EXPECT_FALSE(c.status.ok()) << c.name;
    EXPECT_EQ(c.status.code(), c.code) << c.name;
    EXPECT_EQ(c.status.message(), "m");
    EXPECT_STREQ(StatusCodeName(c.code), c.name);
    EXPECT_EQ(c.status.ToString(), std::string(c.name) + ": m");
  }
  EXPECT_STREQ(StatusCodeName(Status::Code::kOk), "OK");
}

TEST(StatusTest, WithContextPrefixesErrorsOnly) {
  Status s = Status::NotFound("no file").WithContext("config.yaml");
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_EQ(s.message(), "config.yaml: no file");
  Status ok = Status::Ok().WithContext("ignored");
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.message(), "");
}

TEST(StatusOrTest, HoldsValue) {
  StatusOr<std::string> v(std::string("hello"));
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v.status().ok());
  EXPECT_EQ(*v, "hello");
  EXPECT_EQ(v->size(), 5u);
  v.value() += "!";
  EXPECT_EQ(v.value(), "hello!");
}

TEST(StatusOrTest, HoldsError) {
  StatusOr<int> v(Status::Unavailable("not ready"));
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(v.status().message(), "not ready");
}

TEST(StatusOrTest, MovesOutMoveOnlyValue) {
  StatusOr<std::unique_ptr<int>> v(std::make_unique<int>(7));
  ASSERT_TRUE(v.ok());
  std::unique_ptr<int> p = std::move(v).value();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 7);
}

Status FailIf(bool fail) { return fail ? Status::Internal("boom") : Status::Ok(); }

Status TwoSteps(bool fail_first, bool fail_second, int* steps) {
  RETURN_IF_ERROR(FailIf(fail_first));
  ++*steps;
  RETURN_IF_ERROR(FailIf(fail_second));
  ++*steps;
  return Status::Ok();
}

TEST(StatusMacrosTest, ReturnIfErrorStopsAtFirstError) {
  int steps = 0;
  EXPECT_TRUE(TwoSteps(false, false, &steps).ok());
  EXPECT_EQ(steps, 2);
  steps = 0;
  Status s = TwoSteps(false, true, &steps);
  EXPECT_EQ(s.code(), Status::Code::kInternal);
  EXPECT_EQ(s.message(), "boom");
  EXPECT_EQ(steps, 1);
  steps = 0;
  EXPECT_FALSE(TwoSteps(true, false, &steps).ok());
  EXPECT_EQ(steps, 0);
}

StatusOr<int> Half(int x) {
  if (x % 2 != 0) return Status::InvalidArgument(std::to_string(x) + " is odd");
  return x / 2;
}

StatusOr<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int half, Half(x));
  ASSIGN_OR_RETURN(int quarter, Half(half));  // two uses in one function
  return quarter;
}

StatusOr<std::unique_ptr<int>> Boxed(int x) {
  ASSIGN_OR_RETURN(auto box, StatusOr<std::unique_ptr<int>>(std::make_unique<int>(x)));
  return box;
}

TEST(StatusMacrosTest, AssignOrReturn) {
  auto q = Quarter(12);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(*q, 3);
  auto odd = Quarter(6);
  ASSERT_FALSE(odd.ok());
  EXPECT_EQ(odd.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(odd.status().message(), "3 is odd");
  auto boxed = Boxed(5);
  ASSERT_TRUE(boxed.ok());
  EXPECT_EQ(**boxed, 5);
}

}  // namespace
}  // namespace berth
