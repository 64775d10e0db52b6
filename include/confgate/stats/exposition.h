// The Prometheus exposition of every metric in design.md, built at scrape time from the
// counters the data plane keeps (never a registry lookup per request).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "confgate/cache/store.h"
#include "confgate/upstream/host.h"

namespace confgate::stats {

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

// Text format 0.0.4. prometheus-cpp's exceptions stop here (an empty body and a log line).
std::string RenderMetrics(const std::vector<upstream::ClusterSharedPtr>& clusters,
                          const std::vector<RouteCache>& caches, const ProcessCounters& process);

}  // namespace confgate::stats
