// Cache snapshots: each persisted route cache is written to its file every persist.interval,
// on the main thread (never on a worker). A reload hands over the new runtime snapshot; a path
// that stays keeps its schedule, so its next write is never pushed out: reloads more frequent
// than the interval (a SIGHUP every 0.5 s) used to re-arm the timers and starve the snapshots.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "confgate/cache/store.h"
#include "confgate/common/time_source.h"
#include "confgate/event/dispatcher.h"
#include "confgate/server/runtime.h"

namespace confgate::server {

class CachePersister {
 public:
  CachePersister(event::Dispatcher& dispatcher, TimeSource& time)
      : dispatcher_(dispatcher), time_(time) {}

  // At start-up and after every reload: the persisted caches of `snapshot` from now on. A path
  // already written keeps its due time (brought forward if its interval got shorter); a new
  // path is due one interval from now; a dropped path is no longer written.
  void Follow(const RuntimeSnapshot& snapshot);
  // Writes every followed cache now (at shutdown).
  void WriteAll();
  // When `path` is written next; nullopt when no followed cache is persisted there.
  std::optional<MonotonicTime> due(const std::string& path) const;

 private:
  struct Entry {
    std::shared_ptr<cache::ResponseCache> cache;
    absl::Duration interval;
    MonotonicTime due;
    event::TimerPtr timer;
  };
  void Arm(const std::string& path, Entry& entry);

  event::Dispatcher& dispatcher_;
  TimeSource& time_;
  std::map<std::string, std::unique_ptr<Entry>> entries_;  // by snapshot path
};

// At start-up, before any write: fills the persisted caches of `runtime` from their files, so a
// confgate restarted during a full outage still serves the last good config. A bad snapshot is
// logged and ignored, never fatal.
void LoadCacheSnapshots(const RuntimeSnapshot& runtime);

// Writes `route_cache` to `path`; a failure is logged, never fatal.
void PersistCache(cache::ResponseCache& route_cache, const std::string& path);

}  // namespace confgate::server
