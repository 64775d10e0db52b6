#include "server/cache_persister.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "confgate/cache/snapshot.h"
#include "confgate/common/log.h"

namespace confgate::server {

void PersistCache(cache::ResponseCache& route_cache, const std::string& path) {
  absl::Status written = cache::WriteSnapshotFile(path, route_cache.Export());
  if (!written.ok()) {
    Log(LogLevel::kWarn, "cache snapshot not written",
        {{"path", path}, {"reason", std::string(written.message())}});
  }
}

void LoadCacheSnapshots(const RuntimeSnapshot& runtime) {
  for (const router::Route& route : runtime.routes.routes()) {
    if (!route.cache.has_value() || !route.cache->persist.has_value()) {
      continue;
    }
    const std::string& path = route.cache->persist->path;
    // What a writer killed mid-write left behind; no write has started yet.
    if (int removed = cache::RemoveStaleSnapshotTemps(path); removed > 0) {
      Log(LogLevel::kInfo, "stale cache snapshot temp files removed",
          {{"path", path}, {"files", absl::StrCat(removed)}});
    }
    absl::StatusOr<cache::DecodedSnapshot> snapshot =
        cache::ReadSnapshotFile(path, cache::MaxSnapshotFileBytes(route.cache->max_bytes));
    if (!snapshot.ok()) {
      Log(snapshot.status().code() == absl::StatusCode::kNotFound ? LogLevel::kInfo
                                                                  : LogLevel::kWarn,
          "cache snapshot not loaded",
          {{"path", path}, {"reason", std::string(snapshot.status().message())}});
      continue;
    }
    if (!snapshot->dropped.empty()) {
      Log(LogLevel::kWarn, "cache snapshot entries dropped",
          {{"path", path},
           {"dropped", absl::StrCat(snapshot->dropped.size())},
           {"first_reason", snapshot->dropped.front()}});
    }
    size_t loaded = 0;
    for (cache::CacheItem& item : snapshot->items) {
      loaded += runtime.route_caches[route.index]->Insert(std::move(item)) ? 1 : 0;
    }
    // Loaded entries are stale until an upstream answer replaces them: their times came from
    // disk. They still answer in read-only mode and on upstream errors (within max_stale).
    Log(LogLevel::kInfo, "cache snapshot loaded",
        {{"path", path}, {"entries", absl::StrCat(loaded)}});
  }
}

void CachePersister::Follow(const RuntimeSnapshot& snapshot) {
  MonotonicTime now = time_.Monotonic();
  std::map<std::string, std::unique_ptr<Entry>> followed;
  for (const router::Route& route : snapshot.routes.routes()) {
    if (!route.cache.has_value() || !route.cache->persist.has_value()) {
      continue;
    }
    const config::CachePersistConfig& persist = *route.cache->persist;
    std::unique_ptr<Entry>& entry = followed[persist.path];
    auto previous = entries_.find(persist.path);
    if (previous != entries_.end()) {
      entry = std::move(previous->second);
      entries_.erase(previous);
    }
    MonotonicTime due = now + absl::ToChronoNanoseconds(persist.interval);
    if (entry == nullptr) {
      entry = std::make_unique<Entry>();
      entry->due = due;
    } else {
      entry->due = std::min(entry->due, due);
    }
    entry->cache = snapshot.route_caches[route.index];
    entry->interval = persist.interval;
    Arm(persist.path, *entry);
  }
  entries_ = std::move(followed);  // the rest (dropped paths) go with their timers
}

void CachePersister::Arm(const std::string& path, Entry& entry) {
  if (entry.timer == nullptr) {
    Entry* raw = &entry;
    entry.timer = dispatcher_.CreateTimer([this, raw, path] {
      PersistCache(*raw->cache, path);
      raw->due = time_.Monotonic() + absl::ToChronoNanoseconds(raw->interval);
      Arm(path, *raw);
    });
  }
  entry.timer->Enable(
      absl::FromChrono(std::max(entry.due - time_.Monotonic(), MonotonicTime::duration{})));
}

void CachePersister::WriteAll() {
  for (const auto& [path, entry] : entries_) {
    entry->timer.reset();
    PersistCache(*entry->cache, path);
  }
}

std::optional<MonotonicTime> CachePersister::due(const std::string& path) const {
  auto it = entries_.find(path);
  if (it == entries_.end()) {
    return std::nullopt;
  }
  return it->second->due;
}

}  // namespace confgate::server
