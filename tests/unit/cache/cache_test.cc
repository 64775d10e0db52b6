#include "confgate/cache/policy.h"
#include "confgate/cache/store.h"
#include "confgate/common/time_source.h"
#include "gtest/gtest.h"

namespace confgate::cache {
namespace {

http::RequestHead Get(const std::string& target,
                      std::vector<std::pair<std::string, std::string>> headers = {}) {
  http::RequestHead head;
  head.method = "GET";
  head.SetTarget(target);
  head.headers.Add("Host", "cfg.example");
  for (auto& [name, value] : headers) {
    head.headers.Add(name, value);
  }
  return head;
}

http::ResponseHead Response(int status, std::vector<std::pair<std::string, std::string>> headers) {
  http::ResponseHead head;
  head.status = status;
  for (auto& [name, value] : headers) {
    head.headers.Add(name, value);
  }
  return head;
}

struct StorableCase {
  const char* name;
  int status;
  std::vector<std::pair<std::string, std::string>> response_headers;
  std::vector<std::pair<std::string, std::string>> request_headers;
  bool storable;
};

TEST(WhyNotStorable, Rfc9111Cases) {
  config::CacheConfig config;
  config.key_headers = {"Authorization"};
  std::vector<StorableCase> cases = {
      {"plain 200", 200, {}, {}, true},
      {"max-age", 200, {{"Cache-Control", "max-age=60"}}, {}, true},
      {"no-store", 200, {{"Cache-Control", "no-store"}}, {}, false},
      {"no-store among others", 200, {{"Cache-Control", "public, No-Store"}}, {}, false},
      {"private", 200, {{"Cache-Control", "private, max-age=60"}}, {}, false},
      {"404", 404, {}, {}, false},
      {"500", 500, {}, {}, false},
      {"206", 206, {}, {}, false},
      {"vary star", 200, {{"Vary", "*"}}, {}, false},
      {"set-cookie", 200, {{"Set-Cookie", "a=b"}}, {}, false},
      {"request no-store", 200, {}, {{"Cache-Control", "no-store"}}, false},
      {"keyed authorization", 200, {}, {{"Authorization", "Bearer a"}}, true},
      {"unkeyed cookie", 200, {}, {{"Cookie", "session=1"}}, false},
  };
  for (const StorableCase& c : cases) {
    EXPECT_EQ(!WhyNotStorable(Get("/k", c.request_headers), Response(c.status, c.response_headers),
                              config)
                   .has_value(),
              c.storable)
        << c.name;
  }
}

TEST(WhyNotStorable, AuthorizationNeedsToBeInTheKey) {
  config::CacheConfig config;
  auto reason =
      WhyNotStorable(Get("/k", {{"Authorization", "Bearer a"}}), Response(200, {}), config);
  ASSERT_TRUE(reason.has_value());
  EXPECT_NE(reason->find("Authorization"), std::string::npos);
}

TEST(FreshnessLifetime, PrecedenceOfDirectives) {
  config::CacheConfig config;
  config.default_ttl = absl::Seconds(7);
  absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  EXPECT_EQ(
      FreshnessLifetime(Response(200, {{"Cache-Control", "max-age=60, s-maxage=30"}}), config, now),
      absl::Seconds(30));
  EXPECT_EQ(FreshnessLifetime(Response(200, {{"Cache-Control", "max-age=60"}}), config, now),
            absl::Seconds(60));
  EXPECT_EQ(FreshnessLifetime(Response(200, {{"Cache-Control", "max-age=abc"}}), config, now),
            absl::ZeroDuration());
  EXPECT_EQ(FreshnessLifetime(Response(200, {{"Date", FormatHttpDate(now)},
                                             {"Expires", FormatHttpDate(now + absl::Seconds(90))}}),
                              config, now),
            absl::Seconds(90));
  EXPECT_EQ(FreshnessLifetime(Response(200, {{"Expires", "0"}}), config, now),
            absl::ZeroDuration());
  EXPECT_EQ(FreshnessLifetime(Response(200, {}), config, now), absl::Seconds(7));
}

TEST(RequestAllowsCachedAnswer, ClientDirectives) {
  EXPECT_TRUE(RequestAllowsCachedAnswer(Get("/k")));
  EXPECT_FALSE(RequestAllowsCachedAnswer(Get("/k", {{"Cache-Control", "no-cache"}})));
  EXPECT_FALSE(RequestAllowsCachedAnswer(Get("/k", {{"Cache-Control", "max-age=0"}})));
  EXPECT_FALSE(RequestAllowsCachedAnswer(Get("/k", {{"Pragma", "no-cache"}})));
  EXPECT_TRUE(RequestAllowsCachedAnswer(Get("/k", {{"Cache-Control", "max-age=30"}})));
}

TEST(PrimaryKey, Composition) {
  config::CacheConfig config;
  config.key_headers = {"Authorization"};
  std::string a = PrimaryKey(Get("/k?x=1", {{"Authorization", "A"}}), config, "");
  std::string b = PrimaryKey(Get("/k?x=1", {{"Authorization", "B"}}), config, "");
  std::string none = PrimaryKey(Get("/k?x=1"), config, "");
  std::string empty = PrimaryKey(Get("/k?x=1", {{"Authorization", ""}}), config, "");
  EXPECT_NE(a, b);
  EXPECT_NE(a, none);
  EXPECT_NE(none, empty);  // absent and empty are different keys
  EXPECT_NE(PrimaryKey(Get("/k?x=1"), config, ""), PrimaryKey(Get("/k?x=2"), config, ""));
  http::RequestHead head = Get("/k");
  head.method = "HEAD";
  EXPECT_EQ(PrimaryKey(head, {}, ""), PrimaryKey(Get("/k"), {}, ""));  // HEAD uses GET's entry
  http::RequestHead post = Get("/v3/kv/range");
  post.method = "POST";
  EXPECT_NE(PrimaryKey(post, {}, "{\"key\":\"a\"}"), PrimaryKey(post, {}, "{\"key\":\"b\"}"));
  EXPECT_NE(PrimaryKey(post, {}, ""), PrimaryKey(Get("/v3/kv/range"), {}, ""));
  http::RequestHead other_host = Get("/k");
  other_host.headers.Set("Host", "other.example");
  EXPECT_NE(PrimaryKey(other_host, {}, ""), PrimaryKey(Get("/k"), {}, ""));
}

TEST(Vary, NamesAndSecondaryKey) {
  std::vector<std::string> names =
      VaryNames(Response(200, {{"Vary", "Accept-Encoding, X-Tenant"}, {"Vary", "accept"}}));
  EXPECT_EQ(names, (std::vector<std::string>{"accept-encoding", "x-tenant", "accept"}));
  EXPECT_NE(VaryKey(Get("/k", {{"X-Tenant", "a"}}), names),
            VaryKey(Get("/k", {{"X-Tenant", "b"}}), names));
  EXPECT_EQ(VaryKey(Get("/k", {{"X-Other", "a"}}), names), VaryKey(Get("/k"), names));
}

http::HeaderMap Fields(
    std::initializer_list<std::pair<absl::string_view, absl::string_view>> fields) {
  http::HeaderMap headers;
  for (const auto& [name, value] : fields) {
    headers.Add(name, value);
  }
  http::HeaderMap stored = headers;  // as the proxy stores fields: a copy, no room to spare
  return stored;
}

CachedResponsePtr MakeResponse(std::string body, absl::Duration fresh_for = absl::Seconds(60)) {
  auto response = std::make_shared<CachedResponse>();
  response->headers = Fields({{"ETag", "\"1\""}, {"Content-Type", "text/plain"}});
  response->body = std::move(body);
  response->stored_at = absl::FromUnixSeconds(1'700'000'000);
  response->fresh_for = fresh_for;
  return response;
}

auto NoVary = [](const std::vector<std::string>&) { return std::string(); };

TEST(ResponseCache, StoresAndFindsByKeyAndVary) {
  ResponseCache cache(1 << 20, 1 << 16);
  ASSERT_TRUE(cache.Insert({"k", {}, "", MakeResponse("v1")}));
  ASSERT_NE(cache.Lookup("k", NoVary), nullptr);
  EXPECT_EQ(cache.Lookup("k", NoVary)->body, "v1");
  EXPECT_EQ(cache.Lookup("other", NoVary), nullptr);
  // Two variants under one primary key.
  ASSERT_TRUE(cache.Insert({"v", {"x-tenant"}, "x-tenant=a\n", MakeResponse("for a")}));
  ASSERT_TRUE(cache.Insert({"v", {"x-tenant"}, "x-tenant=b\n", MakeResponse("for b")}));
  auto tenant = [](const std::string& value) {
    return [value](const std::vector<std::string>& names) {
      return names.empty() ? std::string() : "x-tenant=" + value + "\n";
    };
  };
  EXPECT_EQ(cache.Lookup("v", tenant("a"))->body, "for a");
  EXPECT_EQ(cache.Lookup("v", tenant("b"))->body, "for b");
  EXPECT_EQ(cache.Lookup("v", tenant("c")), nullptr);
  EXPECT_EQ(cache.stats().entries.load(), 3u);
}

TEST(ResponseCache, RefusesObjectsOverTheLimit) {
  ResponseCache cache(1 << 20, 10);
  EXPECT_FALSE(cache.Insert({"k", {}, "", MakeResponse(std::string(11, 'x'))}));
  EXPECT_EQ(cache.Lookup("k", NoVary), nullptr);
}

TEST(ResponseCache, LruStaysWithinItsBoundUnderChurn) {
  const uint64_t max_bytes = 256 * 1024;
  ResponseCache cache(max_bytes, 4096);
  for (int i = 0; i < 5000; ++i) {
    cache.Insert({"key-" + std::to_string(i), {}, "", MakeResponse(std::string(1000, 'x'))});
    ASSERT_LE(cache.stats().bytes.load(), max_bytes);
  }
  EXPECT_GT(cache.stats().evictions.load(), 4000u);
  // The most recent entries survive; the oldest are gone.
  EXPECT_NE(cache.Lookup("key-4999", NoVary), nullptr);
  EXPECT_EQ(cache.Lookup("key-0", NoVary), nullptr);
}

TEST(ResponseCache, LookupRefreshesRecency) {
  ResponseCache cache(ResponseCache::kShards * 3000, 4096);
  // Find three keys in one shard so that the shard's budget holds two of them.
  std::vector<std::string> keys;
  for (int i = 0; keys.size() < 3; ++i) {
    std::string key = "k" + std::to_string(i);
    if (absl::HashOf(key) % ResponseCache::kShards ==
        absl::HashOf(std::string("k0")) % ResponseCache::kShards) {
      keys.push_back(key);
    }
  }
  cache.Insert({keys[0], {}, "", MakeResponse(std::string(1000, 'a'))});
  cache.Insert({keys[1], {}, "", MakeResponse(std::string(1000, 'b'))});
  cache.Lookup(keys[0], NoVary);  // keys[1] is now the least recently used
  cache.Insert({keys[2], {}, "", MakeResponse(std::string(1000, 'c'))});
  EXPECT_NE(cache.Lookup(keys[0], NoVary), nullptr);
  EXPECT_EQ(cache.Lookup(keys[1], NoVary), nullptr);
}

TEST(CachedResponse, AgeAndFreshness) {
  CachedResponsePtr response = MakeResponse("v", absl::Seconds(10));
  absl::Time stored = response->stored_at;
  EXPECT_TRUE(response->Fresh(stored + absl::Seconds(9)));
  EXPECT_FALSE(response->Fresh(stored + absl::Seconds(10)));
  EXPECT_EQ(response->Age(stored + absl::Seconds(4)), absl::Seconds(4));
  EXPECT_EQ(*response->Header("etag"), "\"1\"");
}

// A wall clock stepped back (or a time stored "in the future") must not give a negative Age
// (`Age: -315359999` was served) nor stretch age below what the upstream said.
TEST(CachedResponse, AgeIsNeverNegative) {
  SimulatedTimeSource clock;
  auto response = std::make_shared<CachedResponse>(*MakeResponse("v", absl::Seconds(10)));
  response->stored_at = clock.SystemTime() + absl::Hours(24 * 3650);
  EXPECT_EQ(response->Age(clock.SystemTime()), absl::ZeroDuration());
  EXPECT_EQ(AgeValue(response->Age(clock.SystemTime())), "0");
  response->initial_age = absl::Seconds(5);
  EXPECT_EQ(response->Age(clock.SystemTime()), absl::Seconds(5));
  response->stored_at = clock.SystemTime();
  clock.Advance(absl::Seconds(3));
  EXPECT_EQ(response->Age(clock.SystemTime()), absl::Seconds(8));
  EXPECT_EQ(AgeValue(absl::Seconds(-7)), "0");
  EXPECT_EQ(AgeValue(absl::Seconds(12)), "12");
  EXPECT_EQ(AgeValue(absl::InfiniteDuration()), "2147483648");  // RFC 9111 section 1.2.2
}

// Framing is the serving path's to set from the body it sends: no stored framing or hop-by-hop
// field is ever copied into a cached answer, however it got into the entry.
TEST(AddServedFields, NeverCopiesFramingOrHopByHopFields) {
  auto response = std::make_shared<CachedResponse>();
  response->headers = Fields({{"ETag", "\"1\""},
                              {"Transfer-Encoding", "chunked"},
                              {"Content-Length", "999"},
                              {"Connection", "close"},
                              {"Keep-Alive", "timeout=5"},
                              {"Trailer", "X-A"},
                              {"Upgrade", "h2c"},
                              {"Content-Type", "text/plain"}});
  http::HeaderMap served;
  AddServedFields(*response, /*not_modified=*/false, served);
  ASSERT_EQ(served.size(), 2u);
  EXPECT_EQ(served.entries()[0].name, "ETag");
  EXPECT_EQ(served.entries()[1].name, "Content-Type");
  http::HeaderMap on_304;
  AddServedFields(*response, /*not_modified=*/true, on_304);
  ASSERT_EQ(on_304.size(), 1u);
  EXPECT_EQ(on_304.entries()[0].name, "ETag");
}

TEST(MatchesConditional, EtagsDatesAndMethods) {
  auto response = std::make_shared<CachedResponse>();
  response->headers = Fields({{"ETag", "W/\"7\""},
                              {"Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"},
                              {"Content-Type", "text/plain"}});
  EXPECT_TRUE(MatchesConditional(Get("/k", {{"If-None-Match", "\"7\""}}), *response));
  EXPECT_TRUE(MatchesConditional(Get("/k", {{"If-None-Match", "\"1\", W/\"7\""}}), *response));
  EXPECT_TRUE(MatchesConditional(Get("/k", {{"If-None-Match", "*"}}), *response));
  EXPECT_FALSE(MatchesConditional(Get("/k", {{"If-None-Match", "\"8\""}}), *response));
  // If-None-Match wins over If-Modified-Since.
  EXPECT_FALSE(MatchesConditional(
      Get("/k",
          {{"If-None-Match", "\"8\""}, {"If-Modified-Since", "Mon, 07 Nov 1994 08:49:37 GMT"}}),
      *response));
  EXPECT_TRUE(MatchesConditional(
      Get("/k", {{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}}), *response));
  EXPECT_FALSE(MatchesConditional(
      Get("/k", {{"If-Modified-Since", "Sat, 05 Nov 1994 08:49:37 GMT"}}), *response));
  http::RequestHead post = Get("/k", {{"If-None-Match", "\"7\""}});
  post.method = "POST";
  EXPECT_FALSE(MatchesConditional(post, *response));
  EXPECT_TRUE(KeptOn304("ETag"));
  EXPECT_FALSE(KeptOn304("Content-Type"));
}

TEST(HttpDate, RoundTrip) {
  absl::Time time = absl::FromUnixSeconds(784111777);
  EXPECT_EQ(FormatHttpDate(time), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), time);
  EXPECT_FALSE(ParseHttpDate("yesterday").has_value());
}

}  // namespace
}  // namespace confgate::cache
