// The typed forms the loader parses once: the maglev hash-key spec and the retry conditions.
#include "confgate/config/hash_key.h"
#include "confgate/config/loader.h"
#include "confgate/config/retry_on.h"
#include "gtest/gtest.h"

namespace confgate::config {
namespace {

TEST(HashKey, SpecForms) {
  EXPECT_TRUE(ParseHashKeySpec("path").has_value());
  EXPECT_TRUE(ParseHashKeySpec("client_ip").has_value());
  EXPECT_TRUE(ParseHashKeySpec("header:X-Client-Id").has_value());
  EXPECT_TRUE(ParseHashKeySpec("cookie:session").has_value());
  EXPECT_FALSE(ParseHashKeySpec("header:").has_value());
  EXPECT_FALSE(ParseHashKeySpec("body").has_value());
  std::optional<HashKeySpec> header = ParseHashKeySpec("header:X-Client-Id");
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->source, HashKeySpec::Source::kHeader);
  EXPECT_EQ(header->name, "X-Client-Id");
  EXPECT_EQ(ParseHashKeySpec("cookie:s")->source, HashKeySpec::Source::kCookie);
  EXPECT_EQ(ParseHashKeySpec("path")->source, HashKeySpec::Source::kPath);
}

TEST(RetryOn, DefaultsAreTheDocumentedSix) {
  RetryOn on = RetryOn::Defaults();
  EXPECT_EQ(on.size(), 6u);
  EXPECT_TRUE(on.Has(RetryOn::Condition::kConnectFailure));
  EXPECT_TRUE(on.Has(RetryOn::Condition::kReset));
  EXPECT_TRUE(on.Has(RetryOn::Condition::kTimeout));
  EXPECT_TRUE(on.HasStatus(502));
  EXPECT_TRUE(on.HasStatus(503));
  EXPECT_TRUE(on.HasStatus(504));
  EXPECT_FALSE(on.HasStatus(500));
  EXPECT_FALSE(on.HasStatus(99));
  EXPECT_FALSE(on.HasStatus(600));
  EXPECT_FALSE(on.HasStatus(-1));
}

TEST(RetryOn, FileListReplacesTheDefaults) {
  LoadResult loaded = LoadConfigFromString(R"(
listeners: [{address: "127.0.0.1:0"}]
upstreams:
  cs:
    servers: [{address: "127.0.0.1:8081"}]
    retries: {on: [reset, "500", "599", "100"]}
routes: [{match: {prefix: /}, upstream: cs}]
)",
                                           "test.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.errors[0].ToString();
  const RetryOn& on = loaded.config.upstreams[0].retries.on;
  EXPECT_EQ(on.size(), 4u);
  EXPECT_TRUE(on.Has(RetryOn::Condition::kReset));
  EXPECT_FALSE(on.Has(RetryOn::Condition::kConnectFailure));
  EXPECT_FALSE(on.Has(RetryOn::Condition::kTimeout));
  EXPECT_TRUE(on.HasStatus(500));
  EXPECT_TRUE(on.HasStatus(599));
  EXPECT_TRUE(on.HasStatus(100));
  EXPECT_FALSE(on.HasStatus(502));
}

TEST(RetryOn, AnUnknownConditionKeepsItsMessage) {
  LoadResult loaded = LoadConfigFromString(R"(
listeners: [{address: "127.0.0.1:0"}]
upstreams:
  cs:
    servers: [{address: "127.0.0.1:8081"}]
    retries: {on: [reset, "5xx"]}
routes: [{match: {prefix: /}, upstream: cs}]
)",
                                           "test.yaml");
  ASSERT_EQ(loaded.errors.size(), 1u);
  EXPECT_EQ(loaded.errors[0].ToString(),
            "upstreams.cs.retries.on[1]: line 6: \"5xx\" is not connect_failure, reset, timeout or "
            "a status");
}

}  // namespace
}  // namespace confgate::config
