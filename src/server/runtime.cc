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
  return std::make_shared<const RuntimeSnapshot>(
      RuntimeSnapshot{config, *std::move(clusters), router::RouteTable(config.routes, names)});
}

}  // namespace confgate::server
