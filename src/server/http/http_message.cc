#include "server/http/http_message.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace berth::http {

int HttpStatusFor(Status::Code code) {
  switch (code) {
    case Status::Code::kOk: return 200;
    case Status::Code::kInvalidArgument: return 400;
    case Status::Code::kFailedPrecondition: return 400;
    case Status::Code::kNotFound: return 404;
    case Status::Code::kAlreadyExists: return 409;
    case Status::Code::kResourceExhausted: return 413;
    case Status::Code::kUnimplemented: return 501;
    case Status::Code::kUnavailable: return 503;
    case Status::Code::kInternal: return 500;
    case Status::Code::kPermissionDenied: return 403;
    case Status::Code::kAborted: return 409;
    case Status::Code::kDeadlineExceeded: return 504;
    case Status::Code::kUnauthenticated: return 401;
  }
  return 500;
}

Status::Code CodeForHttpStatus(int status) {
  switch (status) {
    case 401: return Status::Code::kUnauthenticated;
    case 403: return Status::Code::kPermissionDenied;
    case 404: return Status::Code::kNotFound;
    case 408:
    case 504: return Status::Code::kDeadlineExceeded;
    case 409: return Status::Code::kAborted;
    case 413:
    case 429:
    case 507: return Status::Code::kResourceExhausted;
    case 501: return Status::Code::kUnimplemented;
    case 503: return Status::Code::kUnavailable;
    default: break;
  }
  if (status < 400) return Status::Code::kOk;
  return status < 500 ? Status::Code::kInvalidArgument : Status::Code::kInternal;
}

HttpResponse ErrorResponse(const Status& status) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("error");
  w.String(status.message().data(), static_cast<rapidjson::SizeType>(status.message().size()));
  w.EndObject();
  HttpResponse r =
      JsonResponse(HttpStatusFor(status.code()), std::string(buf.GetString(), buf.GetSize()));
  // Every 503 is a state that passes (a full queue, the in-flight budget, a
  // version loading or unloading, a shutdown): say when to try again.
  if (r.status == 503) r.headers.emplace_back("Retry-After", "1");
  return r;
}

HttpResponse ChangeErrorResponse(const Status& status) {
  HttpResponse r = ErrorResponse(status);
  if (status.code() == Status::Code::kResourceExhausted) r.status = 507;
  return r;
}

HttpResponse JsonResponse(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

}  // namespace berth::http
