#include "confgate/cache/store.h"

#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace confgate::cache {

size_t CachedResponse::Bytes() const {
  return sizeof(CachedResponse) + body.size() + headers.MemoryBytes();
}

ResponseCache::ResponseCache(uint64_t max_bytes, uint64_t max_object_bytes)
    : max_object_bytes_(max_object_bytes),
      shard_budget_(std::max<uint64_t>(max_bytes / kShards, 1)) {}

std::string ResponseCache::PathKey(absl::string_view primary_key) {
  // PrimaryKey(): "method\nhost\ntarget[\nkey headers...][\nbody hash]"; a target holds no
  // newline. Anything else (tests' plain keys) is its own path.
  size_t host_start = primary_key.find('\n');
  size_t target_start =
      host_start == absl::string_view::npos ? host_start : primary_key.find('\n', host_start + 1);
  if (target_start == absl::string_view::npos) {
    return std::string(primary_key);
  }
  absl::string_view target = primary_key.substr(target_start + 1);
  target = target.substr(0, target.find_first_of("\n?"));
  return absl::StrCat(primary_key.substr(host_start + 1, target_start - host_start - 1), "\n",
                      target);
}

ResponseCache::Shard& ResponseCache::ShardFor(const std::string& primary_key) {
  return shards_[absl::HashOf(PathKey(primary_key)) % kShards];
}

void ResponseCache::Unlink(Shard& shard, const Entry& entry) {
  shard.bytes -= entry.bytes;
  stats_.bytes.fetch_sub(entry.bytes, std::memory_order_relaxed);
  stats_.entries.fetch_sub(1, std::memory_order_relaxed);
  shard.by_key.erase(entry.full_key);
  auto path = shard.by_path.find(PathKey(entry.item.primary_key));
  if (path != shard.by_path.end()) {
    path->second.erase(entry.full_key);
    if (path->second.empty()) {
      shard.by_path.erase(path);
    }
  }
}

size_t ResponseCache::Invalidate(absl::string_view host, absl::string_view path) {
  std::string path_key = absl::StrCat(absl::AsciiStrToLower(host), "\n", path);
  Shard& shard = ShardFor(path_key);
  MutexLock lock(&shard.mu);
  ++shard.generation;  // even with nothing stored: a fetch in flight may be about to store
  auto found = shard.by_path.find(path_key);
  if (found == shard.by_path.end()) {
    return 0;
  }
  absl::flat_hash_set<std::string> keys = std::move(found->second);
  shard.by_path.erase(found);
  for (const std::string& full_key : keys) {
    auto it = shard.by_key.find(full_key);
    if (it == shard.by_key.end()) {
      continue;
    }
    auto entry = it->second;
    shard.vary_names.erase(entry->item.primary_key);
    Unlink(shard, *entry);
    shard.lru.erase(entry);
  }
  return keys.size();
}

uint64_t ResponseCache::Generation(const std::string& primary_key) {
  Shard& shard = ShardFor(primary_key);
  MutexLock lock(&shard.mu);
  return shard.generation;
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

bool ResponseCache::Insert(CacheItem item, std::optional<uint64_t> fetched_at) {
  size_t bytes = item.response->Bytes() + item.primary_key.size() + item.vary_key.size();
  if (item.response->body.size() > max_object_bytes_ || bytes > shard_budget_) {
    return false;
  }
  std::string full_key = FullKey(item.primary_key, item.vary_key);
  Shard& shard = ShardFor(item.primary_key);
  MutexLock lock(&shard.mu);
  if (fetched_at.has_value() && *fetched_at != shard.generation) {
    return false;
  }
  shard.vary_names[item.primary_key] = item.vary_names;
  auto existing = shard.by_key.find(full_key);
  if (existing != shard.by_key.end()) {
    auto entry = existing->second;
    Unlink(shard, *entry);
    shard.lru.erase(entry);
  }
  shard.by_path[PathKey(item.primary_key)].insert(full_key);
  shard.lru.push_front(Entry{full_key, std::move(item), bytes});
  shard.by_key[full_key] = shard.lru.begin();
  shard.bytes += bytes;
  stats_.bytes.fetch_add(bytes, std::memory_order_relaxed);
  stats_.entries.fetch_add(1, std::memory_order_relaxed);
  while (shard.bytes > shard_budget_ && shard.lru.size() > 1) {
    stats_.evictions.fetch_add(1, std::memory_order_relaxed);
    Unlink(shard, shard.lru.back());
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
