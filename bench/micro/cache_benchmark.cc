// The shared response cache with ~1000 stored config responses (~600-byte JSON bodies, no
// Vary): a lookup that hits, one that misses, and an insert into a full store, which evicts.
// Keys are built by cache::PrimaryKey beforehand; the lookups pass the Vary callback the proxy
// passes.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "confgate/cache/policy.h"
#include "confgate/cache/store.h"

namespace confgate::cache {
namespace {

constexpr int kEntries = 1000;
constexpr uint64_t kLargeStore = 64 * 1024 * 1024;  // holds every entry: no eviction
constexpr uint64_t kMaxObjectBytes = 1024 * 1024;

http::RequestHead MakeRequest(absl::string_view key) {
  http::RequestHead head;
  head.method = "GET";
  head.SetTarget(absl::StrCat("/v1/kv/", key, "?index=5"));
  head.headers.Add("Host", "config.internal.example.com");
  head.headers.Add("Accept", "application/json");
  return head;
}

// Primary keys for `count` distinct config keys; `prefix` keeps sets apart.
std::vector<std::string> MakeKeys(absl::string_view prefix, int count) {
  std::vector<std::string> keys;
  config::CacheConfig config;
  for (int i = 0; i < count; ++i) {
    keys.push_back(
        PrimaryKey(MakeRequest(absl::StrCat(prefix, "/service-", i, "/config")), config, ""));
  }
  return keys;
}

CachedResponsePtr MakeResponse() {
  auto response = std::make_shared<CachedResponse>();
  response->status = 200;
  response->headers.Add("Date", "Tue, 04 Jun 2024 10:15:30 GMT");
  response->headers.Add("Content-Type", "application/json");
  response->headers.Add("Content-Length", "600");
  response->headers.Add("ETag", "\"5-a3f9c2d1\"");
  response->headers.Add("Cache-Control", "max-age=5");
  response->body = std::string(600, 'x');
  response->stored_at = absl::Now();
  response->fresh_for = absl::Seconds(5);
  return response;
}

void Fill(ResponseCache& cache, const std::vector<std::string>& keys, size_t count,
          const CachedResponsePtr& response) {
  for (size_t i = 0; i < count; ++i) {
    cache.Insert(CacheItem{keys[i], {}, "", response});
  }
}

void Lookup(benchmark::State& state, bool hit) {
  ResponseCache cache(kLargeStore, kMaxObjectBytes);
  const std::vector<std::string> stored = MakeKeys("app", kEntries);
  Fill(cache, stored, stored.size(), MakeResponse());
  const std::vector<std::string> absent = MakeKeys("other", kEntries);
  const std::vector<std::string>& keys = hit ? stored : absent;
  const http::RequestHead request = MakeRequest("app/config");
  auto vary_key = [&request](const std::vector<std::string>& names) {
    return VaryKey(request, names);
  };
  size_t i = 0;
  int64_t found = 0;
  for (auto _ : state) {
    CachedResponsePtr response = cache.Lookup(keys[i], vary_key);
    found += response != nullptr;
    benchmark::DoNotOptimize(response);
    i = i + 1 == keys.size() ? 0 : i + 1;
  }
  if (found != (hit ? static_cast<int64_t>(state.iterations()) : 0)) {
    state.SkipWithError("lookups did not hit (or miss) as intended");
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["entries"] = static_cast<double>(cache.stats().entries.load());
}

void BM_LookupHit(benchmark::State& state) { Lookup(state, true); }
void BM_LookupMiss(benchmark::State& state) { Lookup(state, false); }

// Inserts new keys into a store sized for ~kEntries entries, so each insert evicts the least
// recently used entry of its shard. Keys cycle through a set four times the capacity, so a key
// is always long gone when it comes round again.
void BM_InsertEvicting(benchmark::State& state) {
  const CachedResponsePtr response = MakeResponse();
  const std::vector<std::string> keys = MakeKeys("app", 4 * kEntries);
  uint64_t entry_bytes = response->Bytes() + keys[0].size();
  ResponseCache cache(kEntries * entry_bytes, kMaxObjectBytes);
  Fill(cache, keys, kEntries, response);
  uint64_t evictions_before = cache.stats().evictions.load();
  size_t i = kEntries;
  for (auto _ : state) {
    benchmark::DoNotOptimize(cache.Insert(CacheItem{keys[i], {}, "", response}));
    i = i + 1 == keys.size() ? 0 : i + 1;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["entries"] = static_cast<double>(cache.stats().entries.load());
  state.counters["evictions_per_insert"] =
      static_cast<double>(cache.stats().evictions.load() - evictions_before) /
      static_cast<double>(state.iterations());
}

BENCHMARK(BM_LookupHit);
BENCHMARK(BM_LookupMiss);
BENCHMARK(BM_InsertEvicting);

}  // namespace
}  // namespace confgate::cache

BENCHMARK_MAIN();
