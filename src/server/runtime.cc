#include "confgate/server/runtime.h"

namespace confgate::server {

absl::StatusOr<RuntimeSnapshotPtr> BuildRuntimeSnapshot(const config::Config& config) {
  absl::StatusOr<std::vector<upstream::ClusterSharedPtr>> clusters =
      upstream::BuildClusters(config);
  if (!clusters.ok()) {
    return clusters.status();
  }
  std::vector<std::string> names;
  for (const config::UpstreamConfig& upstream : config.upstreams) {
    names.push_back(upstream.name);
  }
  auto snapshot = std::make_shared<RuntimeSnapshot>(
      RuntimeSnapshot{config, *std::move(clusters), router::RouteTable(config.routes, names), {}});
  for (const router::Route& route : snapshot->routes.routes()) {
    snapshot->route_caches.push_back(
        route.cache.has_value() ? std::make_shared<cache::ResponseCache>(
                                      route.cache->max_bytes, route.cache->max_object_bytes)
                                : nullptr);
  }
  return snapshot;
}

}  // namespace confgate::server
