// The shared response cache of one route: sharded (one lock per shard, never a global lock on
// the hit path), bounded by max_bytes with LRU eviction, safe across workers.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "confgate/cache/coalescer.h"
#include "confgate/cache/response.h"
#include "confgate/common/mutex.h"

namespace confgate::cache {

// Counted now, exported by the metrics module.
struct CacheStats {
  std::atomic<uint64_t> hits{0};
  std::atomic<uint64_t> misses{0};
  std::atomic<uint64_t> stale{0};
  std::atomic<uint64_t> coalesced{0};
  std::atomic<uint64_t> bypass{0};
  std::atomic<uint64_t> evictions{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> entries{0};
};

// One stored response with what is needed to find it again.
struct CacheItem {
  std::string primary_key;
  std::vector<std::string> vary_names;
  std::string vary_key;
  CachedResponsePtr response;
};

class ResponseCache {
 public:
  static constexpr size_t kShards = 16;

  ResponseCache(uint64_t max_bytes, uint64_t max_object_bytes);

  // The entry for the request's primary key and its values of the stored Vary headers.
  // `vary_key_for` turns the stored Vary names into the request's secondary key.
  template <typename VaryKeyFn>
  CachedResponsePtr Lookup(const std::string& primary_key, VaryKeyFn vary_key_for);
  // Stores (or replaces) a response; objects over max_object_bytes are refused. With
  // `fetched_at`, the Generation() read before the response was asked for: refused when a
  // write to the same path invalidated entries since (the response may predate that write).
  bool Insert(CacheItem item, std::optional<uint64_t> fetched_at = std::nullopt);
  // Removes every entry of `path` on `host` (any method, query, key_headers, Vary variant and
  // body hash): what an unsafe request to that URI changed (RFC 9111 section 4.4). Returns
  // how many entries went.
  size_t Invalidate(absl::string_view host, absl::string_view path);
  // A number that changes whenever entries that share `primary_key`'s shard are invalidated.
  uint64_t Generation(const std::string& primary_key);
  // The part of a primary key an invalidation matches: "host\npath" (the query cut off).
  static std::string PathKey(absl::string_view primary_key);
  std::vector<CacheItem> Export() const;

  uint64_t max_object_bytes() const { return max_object_bytes_; }
  CacheStats& stats() { return stats_; }
  const CacheStats& stats() const { return stats_; }
  Coalescer& coalescer() { return coalescer_; }

 private:
  struct Entry {
    std::string full_key;
    CacheItem item;
    size_t bytes = 0;
  };
  struct Shard {
    mutable Mutex mu;
    std::list<Entry> lru ABSL_GUARDED_BY(mu);  // most recently used first
    absl::flat_hash_map<std::string, std::list<Entry>::iterator> by_key ABSL_GUARDED_BY(mu);
    absl::flat_hash_map<std::string, std::vector<std::string>> vary_names ABSL_GUARDED_BY(mu);
    // Full keys by PathKey(), for Invalidate().
    absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> by_path ABSL_GUARDED_BY(mu);
    uint64_t bytes ABSL_GUARDED_BY(mu) = 0;
    uint64_t generation ABSL_GUARDED_BY(mu) = 0;
  };

  // Every entry of one path lives in one shard, so that one lock covers its invalidation.
  Shard& ShardFor(const std::string& primary_key);
  // Takes an entry out of the shard's maps and counts (not out of `lru`).
  void Unlink(Shard& shard, const Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  static std::string FullKey(const std::string& primary, const std::string& vary_key);
  CachedResponsePtr LookupFull(Shard& shard, const std::string& full_key);
  std::vector<std::string> VaryNamesOf(Shard& shard, const std::string& primary_key);

  uint64_t max_object_bytes_;
  uint64_t shard_budget_;
  Shard shards_[kShards];
  CacheStats stats_;
  Coalescer coalescer_;
};

template <typename VaryKeyFn>
CachedResponsePtr ResponseCache::Lookup(const std::string& primary_key, VaryKeyFn vary_key_for) {
  Shard& shard = ShardFor(primary_key);
  std::vector<std::string> names = VaryNamesOf(shard, primary_key);
  return LookupFull(shard, FullKey(primary_key, vary_key_for(names)));
}

}  // namespace confgate::cache
