#include "confgate/http/hash_key.h"

#include "gtest/gtest.h"

namespace confgate::http {
namespace {

TEST(HashKey, SpecForms) {
  EXPECT_TRUE(IsValidHashKeySpec("path"));
  EXPECT_TRUE(IsValidHashKeySpec("client_ip"));
  EXPECT_TRUE(IsValidHashKeySpec("header:X-Client-Id"));
  EXPECT_TRUE(IsValidHashKeySpec("cookie:session"));
  EXPECT_FALSE(IsValidHashKeySpec("header:"));
  EXPECT_FALSE(IsValidHashKeySpec("body"));
}

TEST(HashKey, ExtractsEachKind) {
  RequestHead head;
  head.SetTarget("/v1/kv/app");
  head.headers.Add("X-Client-Id", "svc-7");
  head.headers.Add("Cookie", "theme=dark; session=abc123");
  EXPECT_EQ(ExtractHashKey("path", head, "10.0.0.9"), "/v1/kv/app");
  EXPECT_EQ(ExtractHashKey("client_ip", head, "10.0.0.9"), "10.0.0.9");
  EXPECT_EQ(ExtractHashKey("header:x-client-id", head, ""), "svc-7");
  EXPECT_EQ(ExtractHashKey("cookie:session", head, ""), "abc123");
  EXPECT_FALSE(ExtractHashKey("cookie:missing", head, "").has_value());
  EXPECT_FALSE(ExtractHashKey("header:X-Other", head, "").has_value());
}

}  // namespace
}  // namespace confgate::http
