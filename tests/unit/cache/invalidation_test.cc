// Writes invalidate what they change (RFC 9111 section 4.4): which paths a write names, and the
// purge of every entry of a path from the shared cache, with fetches that raced the write.
#include <memory>
#include <string>
#include <vector>

#include "confgate/cache/policy.h"
#include "confgate/cache/store.h"
#include "gtest/gtest.h"

namespace confgate::cache {
namespace {

http::RequestHead Request(const std::string& method, const std::string& target,
                          const std::string& host = "cfg.example") {
  http::RequestHead head;
  head.method = method;
  head.SetTarget(target);
  head.headers.Add("Host", host);
  return head;
}

http::ResponseHead Answer(int status,
                          std::vector<std::pair<std::string, std::string>> fields = {}) {
  http::ResponseHead head;
  head.status = status;
  for (auto& [name, value] : fields) {
    head.headers.Add(name, value);
  }
  return head;
}

CachedResponsePtr Body(std::string body) {
  auto response = std::make_shared<CachedResponse>();
  response->body = std::move(body);
  response->fresh_for = absl::Seconds(60);
  return response;
}

auto NoVary = [](const std::vector<std::string>&) { return std::string(); };

std::string Key(const http::RequestHead& request, const std::string& body = "",
                std::vector<std::string> key_headers = {}) {
  config::CacheConfig config;
  config.key_headers = std::move(key_headers);
  return PrimaryKey(request, config, body);
}

TEST(InvalidatedPaths, OwnPathAndSameHostLocations) {
  http::RequestHead put = Request("PUT", "/v2/keys/a?prevExist=true");
  EXPECT_EQ(InvalidatedPaths(put, Answer(200)), std::vector<std::string>{"/v2/keys/a"});
  EXPECT_EQ(InvalidatedPaths(put, Answer(307)), std::vector<std::string>{"/v2/keys/a"});
  // Error answers changed nothing.
  EXPECT_TRUE(InvalidatedPaths(put, Answer(404)).empty());
  EXPECT_TRUE(InvalidatedPaths(put, Answer(503)).empty());
  EXPECT_TRUE(InvalidatedPaths(put, Answer(100)).empty());

  http::RequestHead post = Request("POST", "/v2/keys/queue", "CFG.example:8080");
  std::vector<std::string> expected = {"/v2/keys/queue", "/v2/keys/queue/7", "/items/7"};
  EXPECT_EQ(InvalidatedPaths(
                post, Answer(201, {{"Location", "/v2/keys/queue/7?x=1"},
                                   {"Content-Location", "http://cfg.example:8080/items/7#f"}})),
            expected);
  // Other hosts, relative references and scheme-relative ones to other hosts are not ours.
  EXPECT_EQ(InvalidatedPaths(post, Answer(201, {{"Location", "http://other.example/x"},
                                                {"Content-Location", "items/7"}})),
            std::vector<std::string>{"/v2/keys/queue"});
  EXPECT_EQ(InvalidatedPaths(post, Answer(201, {{"Location", "//cfg.example:8080/y"}})),
            (std::vector<std::string>{"/v2/keys/queue", "/y"}));
  EXPECT_EQ(InvalidatedPaths(post, Answer(201, {{"Location", "//other/y"}})),
            std::vector<std::string>{"/v2/keys/queue"});
}

TEST(ResponseCache, InvalidateRemovesEveryEntryOfThePath) {
  ResponseCache cache(1 << 20, 1 << 16);
  http::RequestHead get = Request("GET", "/v1/kv/a");
  http::RequestHead get_query = Request("GET", "/v1/kv/a?consistent");
  http::RequestHead post_read = Request("POST", "/v1/kv/a");
  http::RequestHead sibling = Request("GET", "/v1/kv/ab");
  http::RequestHead other_host = Request("GET", "/v1/kv/a", "other.example");
  std::string tenant_key = Key(get, "", {"X-Tenant"});
  ASSERT_TRUE(cache.Insert({Key(get), {"accept"}, "accept=json\n", Body("json")}));
  ASSERT_TRUE(cache.Insert({Key(get), {"accept"}, "accept=yaml\n", Body("yaml")}));
  ASSERT_TRUE(cache.Insert({Key(get_query), {}, "", Body("q")}));
  ASSERT_TRUE(cache.Insert({Key(post_read, "{}"), {}, "", Body("post")}));
  ASSERT_TRUE(cache.Insert({tenant_key, {}, "", Body("tenant")}));
  ASSERT_TRUE(cache.Insert({Key(sibling), {}, "", Body("sibling")}));
  ASSERT_TRUE(cache.Insert({Key(other_host), {}, "", Body("other")}));
  ASSERT_EQ(cache.stats().entries.load(), 7u);
  uint64_t bytes_of_survivors = 0;
  for (const CacheItem& item : cache.Export()) {
    if (item.response->body == "sibling" || item.response->body == "other") {
      bytes_of_survivors += item.response->Bytes() + item.primary_key.size() + item.vary_key.size();
    }
  }

  // The Host is compared as the key holds it (lower case).
  EXPECT_EQ(cache.Invalidate("CFG.Example", "/v1/kv/a"), 5u);
  auto accept = [](const std::string& value) {
    return [value](const std::vector<std::string>& names) {
      return names.empty() ? std::string() : "accept=" + value + "\n";
    };
  };
  EXPECT_EQ(cache.Lookup(Key(get), accept("json")), nullptr);
  EXPECT_EQ(cache.Lookup(Key(get), accept("yaml")), nullptr);
  EXPECT_EQ(cache.Lookup(Key(get_query), NoVary), nullptr);
  EXPECT_EQ(cache.Lookup(Key(post_read, "{}"), NoVary), nullptr);
  EXPECT_EQ(cache.Lookup(tenant_key, NoVary), nullptr);
  ASSERT_NE(cache.Lookup(Key(sibling), NoVary), nullptr);
  ASSERT_NE(cache.Lookup(Key(other_host), NoVary), nullptr);
  EXPECT_EQ(cache.stats().entries.load(), 2u);
  EXPECT_EQ(cache.stats().bytes.load(), bytes_of_survivors);
  EXPECT_EQ(cache.Invalidate("cfg.example", "/v1/kv/a"), 0u);

  // Stored again later, it is found again (the indexes were left consistent).
  ASSERT_TRUE(cache.Insert({Key(get), {}, "", Body("new")}));
  EXPECT_EQ(cache.Lookup(Key(get), NoVary)->body, "new");
}

TEST(ResponseCache, AFetchThatRacedAWriteIsNotStored) {
  ResponseCache cache(1 << 20, 1 << 16);
  std::string key = Key(Request("GET", "/v1/kv/a"));
  uint64_t before = cache.Generation(key);
  // The write is answered while the read's fetch is upstream: what the fetch brings back may
  // predate the write, so it is not kept.
  cache.Invalidate("cfg.example", "/v1/kv/a");
  EXPECT_FALSE(cache.Insert({key, {}, "", Body("old")}, before));
  EXPECT_EQ(cache.Lookup(key, NoVary), nullptr);
  // A fetch sent after the write is kept.
  EXPECT_TRUE(cache.Insert({key, {}, "", Body("new")}, cache.Generation(key)));
  EXPECT_EQ(cache.Lookup(key, NoVary)->body, "new");
  // Without a generation (a snapshot being loaded) nothing is checked.
  EXPECT_TRUE(cache.Insert({key, {}, "", Body("loaded")}));
}

TEST(ResponseCache, EvictionKeepsThePathIndexConsistent) {
  ResponseCache cache(ResponseCache::kShards * 2048, 4096);
  for (int i = 0; i < 200; ++i) {
    cache.Insert(
        {Key(Request("GET", "/k?i=" + std::to_string(i))), {}, "", Body(std::string(500, 'x'))});
  }
  EXPECT_GT(cache.stats().evictions.load(), 0u);
  uint64_t left = cache.stats().entries.load();
  EXPECT_EQ(cache.Invalidate("cfg.example", "/k"), left);
  EXPECT_EQ(cache.stats().entries.load(), 0u);
  EXPECT_EQ(cache.stats().bytes.load(), 0u);
}

}  // namespace
}  // namespace confgate::cache
