#include "server/http/http_message.h"

#include <gtest/gtest.h>

#include <rapidjson/document.h>

#include <string>

namespace berth::http {
namespace {

TEST(HttpStatusForTest, EveryCode) {
  EXPECT_EQ(HttpStatusFor(Status::Code::kOk), 200);
  EXPECT_EQ(HttpStatusFor(Status::Code::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(Status::Code::kFailedPrecondition), 400);
  EXPECT_EQ(HttpStatusFor(Status::Code::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(Status::Code::kAlreadyExists), 409);
  EXPECT_EQ(HttpStatusFor(Status::Code::kResourceExhausted), 413);
  EXPECT_EQ(HttpStatusFor(Status::Code::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(Status::Code::kUnimplemented), 501);
  EXPECT_EQ(HttpStatusFor(Status::Code::kInternal), 500);
  EXPECT_EQ(HttpStatusFor(Status::Code::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusFor(Status::Code::kAborted), 409);
  EXPECT_EQ(HttpStatusFor(Status::Code::kDeadlineExceeded), 504);
}

TEST(CodeForHttpStatusTest, ReadsBackEveryCodesStatusAndTheRefusals) {
  // Every code whose status is its own comes back from it.
  for (Status::Code code :
       {Status::Code::kInvalidArgument, Status::Code::kNotFound, Status::Code::kResourceExhausted,
        Status::Code::kUnavailable, Status::Code::kUnimplemented, Status::Code::kInternal,
        Status::Code::kPermissionDenied, Status::Code::kDeadlineExceeded,
        Status::Code::kUnauthenticated}) {
    EXPECT_EQ(CodeForHttpStatus(HttpStatusFor(code)), code) << HttpStatusFor(code);
  }
  EXPECT_EQ(CodeForHttpStatus(429), Status::Code::kResourceExhausted);
  EXPECT_EQ(CodeForHttpStatus(405), Status::Code::kInvalidArgument);
  EXPECT_EQ(CodeForHttpStatus(431), Status::Code::kInvalidArgument);
  EXPECT_EQ(CodeForHttpStatus(507), Status::Code::kResourceExhausted);
  EXPECT_EQ(CodeForHttpStatus(502), Status::Code::kInternal);
  EXPECT_EQ(CodeForHttpStatus(200), Status::Code::kOk);
}

TEST(ErrorResponseTest, BodyIsErrorObject) {
  HttpResponse r = ErrorResponse(Status::NotFound("model 'x' is not in the repository"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, R"({"error":"model 'x' is not in the repository"})");
  EXPECT_TRUE(r.headers.empty());
}

TEST(ErrorResponseTest, StatusFollowsTheCode) {
  EXPECT_EQ(ErrorResponse(Status::InvalidArgument("m")).status, 400);
  EXPECT_EQ(ErrorResponse(Status::Unavailable("m")).status, 503);
  EXPECT_EQ(ErrorResponse(Status::ResourceExhausted("m")).status, 413);
  EXPECT_EQ(ErrorResponse(Status::Internal("m")).status, 500);
  EXPECT_EQ(ErrorResponse(Status::DeadlineExceeded("m")).status, 504);
}

TEST(ErrorResponseTest, Every503SaysWhenToRetry) {
  const HttpResponse busy = ErrorResponse(Status::Unavailable("the queue is full"));
  ASSERT_EQ(busy.headers.size(), 1u);
  EXPECT_EQ(busy.headers[0].first, "Retry-After");
  EXPECT_EQ(busy.headers[0].second, "1");
  EXPECT_TRUE(ErrorResponse(Status::DeadlineExceeded("m")).headers.empty());
}

TEST(ErrorResponseTest, EscapesQuotesNewlinesAndControlCharacters) {
  const std::string message = "input \"a\\b\"\nline 2\ttab \x01 end";
  HttpResponse r = ErrorResponse(Status::InvalidArgument(message));
  EXPECT_EQ(r.body, R"({"error":"input \"a\\b\"\nline 2\ttab \u0001 end"})");
  rapidjson::Document doc;
  doc.Parse(r.body.data(), r.body.size());
  ASSERT_FALSE(doc.HasParseError());
  EXPECT_EQ(std::string(doc["error"].GetString(), doc["error"].GetStringLength()), message);
}

TEST(ErrorResponseTest, KeepsEmbeddedNul) {
  const std::string message("a\0b", 3);
  HttpResponse r = ErrorResponse(Status::Internal(message));
  EXPECT_EQ(r.body, R"({"error":"a\u0000b"})");
}

TEST(JsonResponseTest, SetsStatusAndBody) {
  HttpResponse r = JsonResponse(201, R"({"ok":true})");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body, R"({"ok":true})");
  EXPECT_EQ(r.content_type, "application/json");
}

TEST(HttpRequestTest, HeaderFindsTheFirstByLowerCaseName) {
  HttpRequest req;
  req.headers = {{"content-type", "application/json"}, {"x-a", "1"}, {"x-a", "2"}};
  EXPECT_EQ(req.Header("x-a"), "1");
  EXPECT_EQ(req.Header("content-type"), "application/json");
  EXPECT_EQ(req.Header("missing"), "");
}

}  // namespace
}  // namespace berth::http
