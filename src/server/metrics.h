// /metrics: every metric of design.md, read at scrape time from the per-component counters
// (ClusterStats and HostState in upstream/, CacheStats in cache/, the process's own here).
#pragma once

#include <string>
#include <vector>

#include "confgate/cache/store.h"
#include "confgate/upstream/host.h"

namespace confgate::server {

struct ProcessCounters {
  uint64_t downstream_connections = 0;
  uint64_t reloads_succeeded = 0;
  uint64_t reloads_failed = 0;
  uint64_t allocation_failures = 0;
};

struct RouteCache {
  std::string upstream;
  const cache::ResponseCache* cache = nullptr;
};

// Text format 0.0.4 (an empty body when serialization fails).
std::string RenderMetrics(const std::vector<upstream::ClusterSharedPtr>& clusters,
                          const std::vector<RouteCache>& caches, const ProcessCounters& process);

}  // namespace confgate::server
