#include "server/cache_persister.h"

#include <algorithm>

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
