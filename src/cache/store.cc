#include "confgate/cache/store.h"

#include "absl/hash/hash.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace confgate::cache {

size_t CachedResponse::Bytes() const {
  return sizeof(CachedResponse) + body.size() + headers.MemoryBytes();
}

ResponseCache::ResponseCache(uint64_t max_bytes, uint64_t max_object_bytes)
    : max_object_bytes_(max_object_bytes),
      shard_budget_(std::max<uint64_t>(max_bytes / kShards, 1)) {}

ResponseCache::Shard& ResponseCache::ShardFor(const std::string& primary_key) {
  return shards_[absl::HashOf(primary_key) % kShards];
}

std::string ResponseCache::FullKey(const std::string& primary, const std::string& vary_key) {
  return absl::StrCat(primary, "\n\x02", vary_key);
}

std::vector<std::string> ResponseCache::VaryNamesOf(Shard& shard, const std::string& primary_key) {
  MutexLock lock(&shard.mu);
  auto it = shard.vary_names.find(primary_key);
  return it == shard.vary_names.end() ? std::vector<std::string>() : it->second;
}

CachedResponsePtr ResponseCache::LookupFull(Shard& shard, const std::string& full_key) {
  MutexLock lock(&shard.mu);
  auto it = shard.by_key.find(full_key);
  if (it == shard.by_key.end()) {
    return nullptr;
  }
  shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
  return it->second->item.response;
}

bool ResponseCache::Insert(CacheItem item) {
  size_t bytes = item.response->Bytes() + item.primary_key.size() + item.vary_key.size();
  if (item.response->body.size() > max_object_bytes_ || bytes > shard_budget_) {
    return false;
  }
  std::string full_key = FullKey(item.primary_key, item.vary_key);
  Shard& shard = ShardFor(item.primary_key);
  MutexLock lock(&shard.mu);
  shard.vary_names[item.primary_key] = item.vary_names;
  auto existing = shard.by_key.find(full_key);
  if (existing != shard.by_key.end()) {
    shard.bytes -= existing->second->bytes;
    stats_.bytes.fetch_sub(existing->second->bytes, std::memory_order_relaxed);
    stats_.entries.fetch_sub(1, std::memory_order_relaxed);
    shard.lru.erase(existing->second);
    shard.by_key.erase(existing);
  }
  shard.lru.push_front(Entry{full_key, std::move(item), bytes});
  shard.by_key[full_key] = shard.lru.begin();
  shard.bytes += bytes;
  stats_.bytes.fetch_add(bytes, std::memory_order_relaxed);
  stats_.entries.fetch_add(1, std::memory_order_relaxed);
  while (shard.bytes > shard_budget_ && shard.lru.size() > 1) {
    Entry& victim = shard.lru.back();
    shard.bytes -= victim.bytes;
    stats_.bytes.fetch_sub(victim.bytes, std::memory_order_relaxed);
    stats_.entries.fetch_sub(1, std::memory_order_relaxed);
    stats_.evictions.fetch_add(1, std::memory_order_relaxed);
    shard.by_key.erase(victim.full_key);
    shard.lru.pop_back();
  }
  return true;
}

std::vector<CacheItem> ResponseCache::Export() const {
  std::vector<CacheItem> items;
  for (const Shard& shard : shards_) {
    MutexLock lock(&shard.mu);
    // Least recently used first, so an import in order leaves the same recency.
    for (auto it = shard.lru.rbegin(); it != shard.lru.rend(); ++it) {
      items.push_back(it->item);
    }
  }
  return items;
}

}  // namespace confgate::cache
