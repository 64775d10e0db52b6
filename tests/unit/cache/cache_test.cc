#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include "confgate/cache/policy.h"
#include "confgate/cache/snapshot.h"
#include "confgate/cache/store.h"
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

TEST(Snapshot, RoundTrip) {
  std::vector<CacheItem> items = {{"a", {}, "", MakeResponse("first")},
                                  {"b", {"x-tenant"}, "x-tenant=z\n", MakeResponse("second")}};
  absl::StatusOr<std::vector<CacheItem>> decoded = DecodeSnapshot(EncodeSnapshot(items));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->size(), 2u);
  EXPECT_EQ((*decoded)[1].primary_key, "b");
  EXPECT_EQ((*decoded)[1].vary_names, std::vector<std::string>{"x-tenant"});
  EXPECT_EQ((*decoded)[1].vary_key, "x-tenant=z\n");
  EXPECT_EQ((*decoded)[1].response->body, "second");
  EXPECT_EQ((*decoded)[1].response->headers.size(), 2u);
  EXPECT_EQ((*decoded)[0].response->stored_at, items[0].response->stored_at);
  EXPECT_EQ((*decoded)[0].response->fresh_for, absl::Seconds(60));
}

TEST(Snapshot, TruncatedCorruptAndForeignFilesAreRejected) {
  std::string good = EncodeSnapshot({{"a", {}, "", MakeResponse("body")}});
  for (size_t cut = 0; cut < good.size(); cut += 7) {
    EXPECT_FALSE(DecodeSnapshot(good.substr(0, cut)).ok()) << "cut at " << cut;
  }
  for (size_t i = 15; i < good.size(); i += 5) {
    std::string corrupt = good;
    corrupt[i] ^= 0x20;
    EXPECT_FALSE(DecodeSnapshot(corrupt).ok()) << "flip at " << i;
  }
  EXPECT_FALSE(DecodeSnapshot("GIF89a....").ok());
  EXPECT_FALSE(DecodeSnapshot(good + "x").ok());
}

TEST(Snapshot, FileWriteIsAtomicAndReadable) {
  std::string path = ::testing::TempDir() + "/confgate-cache.snapshot";
  ASSERT_TRUE(WriteSnapshotFile(path, {{"a", {}, "", MakeResponse("on disk")}}).ok());
  absl::StatusOr<std::vector<CacheItem>> read = ReadSnapshotFile(path);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ((*read)[0].response->body, "on disk");
  EXPECT_EQ(ReadSnapshotFile(path + ".missing").status().code(), absl::StatusCode::kNotFound);
}

// A snapshot's header fields go to clients verbatim: one that could split a response (or is
// no field at all) makes the whole file unusable, however it got its checksum.
TEST(Snapshot, HeaderFieldsThatCouldSplitAResponseAreRejected) {
  const std::pair<std::string, std::string> bad_fields[] = {
      {"X-A", "a\r\nSet-Cookie: session=forged"},
      {"X-A", "a\nb"},
      {"X-A", std::string("a\0b", 3)},
      {"X-A\r\nSet-Cookie", "x"},
      {"X A", "x"},
      {"", "x"},
  };
  for (const auto& [name, value] : bad_fields) {
    CachedResponsePtr response = MakeResponse("body");
    auto tampered = std::make_shared<CachedResponse>(*response);
    tampered->headers.Add(name, value);
    EXPECT_FALSE(DecodeSnapshot(EncodeSnapshot({{"a", {}, "", tampered}})).ok())
        << name << ": " << value;
  }
}

TEST(Snapshot, FileIsPrivateToTheProcessUser) {
  std::string path = ::testing::TempDir() + "/confgate-private.snapshot";
  unlink(path.c_str());
  mode_t previous = umask(0);  // the mode must come from confgate, not from a lucky umask
  absl::Status written = WriteSnapshotFile(path, {{"a", {}, "", MakeResponse("private")}});
  umask(previous);
  ASSERT_TRUE(written.ok()) << written;
  struct stat info {};
  ASSERT_EQ(lstat(path.c_str(), &info), 0);
  EXPECT_TRUE(S_ISREG(info.st_mode));
  EXPECT_EQ(info.st_mode & 0777, 0600u);
}

// The temp name (path.tmp.<pid>) is predictable; in a directory others can write, a link
// planted there must not make confgate overwrite the file it points to.
TEST(Snapshot, WriteDoesNotFollowALinkAtTheTempName) {
  std::string directory = ::testing::TempDir() + "/confgate-snapshot-link";
  mkdir(directory.c_str(), 0700);
  std::string path = directory + "/cache.snapshot";
  std::string victim = directory + "/victim";
  std::string temp = path + ".tmp." + std::to_string(getpid());
  unlink(path.c_str());
  unlink(temp.c_str());
  {
    std::ofstream out(victim, std::ios::trunc);
    out << "precious";
  }
  ASSERT_EQ(symlink(victim.c_str(), temp.c_str()), 0);
  ASSERT_TRUE(WriteSnapshotFile(path, {{"a", {}, "", MakeResponse("cached")}}).ok());
  std::ifstream in(victim);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "precious");
  struct stat info {};
  ASSERT_EQ(lstat(path.c_str(), &info), 0);
  EXPECT_TRUE(S_ISREG(info.st_mode)) << "the snapshot must be a file of its own, not the link";
  absl::StatusOr<std::vector<CacheItem>> read = ReadSnapshotFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ((*read)[0].response->body, "cached");
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
