#include "confgate/http/hash_key.h"

#include "gtest/gtest.h"

namespace confgate::http {
namespace {

// The spec as the config loader parses it.
config::HashKeySpec Spec(absl::string_view text) {
  std::optional<config::HashKeySpec> spec = config::ParseHashKeySpec(text);
  EXPECT_TRUE(spec.has_value()) << text;
  return spec.value_or(config::HashKeySpec{});
}

TEST(HashKey, ExtractsEachKind) {
  RequestHead head;
  head.SetTarget("/v1/kv/app");
  head.headers.Add("X-Client-Id", "svc-7");
  head.headers.Add("Cookie", "theme=dark; session=abc123");
  EXPECT_EQ(ExtractHashKey(Spec("path"), head, "10.0.0.9"), "/v1/kv/app");
  EXPECT_EQ(ExtractHashKey(Spec("client_ip"), head, "10.0.0.9"), "10.0.0.9");
  EXPECT_EQ(ExtractHashKey(Spec("header:x-client-id"), head, ""), "svc-7");
  EXPECT_EQ(ExtractHashKey(Spec("cookie:session"), head, ""), "abc123");
  EXPECT_FALSE(ExtractHashKey(Spec("cookie:missing"), head, "").has_value());
  EXPECT_FALSE(ExtractHashKey(Spec("header:X-Other"), head, "").has_value());
  EXPECT_FALSE(ExtractHashKey(config::HashKeySpec{}, head, "10.0.0.9").has_value());
}

}  // namespace
}  // namespace confgate::http
