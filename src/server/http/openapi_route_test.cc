#include "server/http/openapi_route.h"

#include <gtest/gtest.h>

#include <string>

#include <rapidjson/document.h>

namespace berth::http {
namespace {

TEST(OpenApiSpecTest, EmbeddedDocumentIsOpenApi3Json) {
  const std::string_view spec = OpenApiSpec();
  rapidjson::Document doc;
  doc.Parse(spec.data(), spec.size());
  ASSERT_FALSE(doc.HasParseError()) << "openapi.json does not parse at offset "
                                    << doc.GetErrorOffset();
  ASSERT_TRUE(doc.IsObject());
  ASSERT_TRUE(doc.HasMember("openapi") && doc["openapi"].IsString());
  EXPECT_EQ(std::string(doc["openapi"].GetString()).substr(0, 2), "3.");
  ASSERT_TRUE(doc.HasMember("paths") && doc["paths"].IsObject());
  EXPECT_TRUE(doc["paths"].HasMember("/v2/models/{model}/infer"));
  EXPECT_TRUE(doc["paths"].HasMember("/v1/models/{model}:predict"));
}

TEST(OpenApiRouteTest, ServesTheDocument) {
  Router router;
  RegisterOpenApiRoute(&router);
  HttpRequest request;
  request.method = "GET";
  request.path = "/openapi.json";
  HttpResponse response;
  router.Dispatch(request, [&](HttpResponse r) { response = std::move(r); });
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.content_type, "application/json");
  EXPECT_EQ(response.body, OpenApiSpec());
}

}  // namespace
}  // namespace berth::http
