// The immutable runtime objects built from one validated upstream file. Workers hold a
// shared_ptr to the snapshot they started a request with.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "confgate/cache/store.h"
#include "confgate/config/config.h"
#include "confgate/http/codec.h"
#include "confgate/network/tls.h"
#include "confgate/router/router.h"
#include "confgate/upstream/host.h"

namespace confgate::server {

struct RuntimeSnapshot {
  config::Config config;
  std::vector<upstream::ClusterSharedPtr> clusters;  // same order as config.upstreams
  router::RouteTable routes;
  // One shared cache per route with `cache.enabled`, by route index; null elsewhere.
  std::vector<std::shared_ptr<cache::ResponseCache>> route_caches;
  // TLS per listener (by config.listeners index) and per cluster; null where not configured.
  std::vector<std::shared_ptr<network::ServerTls>> listener_tls;
  std::vector<std::shared_ptr<network::ClientTls>> cluster_tls;

  // The TLS context of the listener configured at `address`, if any.
  const network::ServerTls* ListenerTls(const std::string& address) const;
};

using RuntimeSnapshotPtr = std::shared_ptr<const RuntimeSnapshot>;

// A write answered with `response`: removes what it changed (cache::InvalidatedPaths on the
// request's Host) from every route cache of `snapshot`. The caches are shared by all workers,
// so this one call covers them all. Returns how many entries went.
size_t InvalidateAfterWrite(const RuntimeSnapshot& snapshot, const http::RequestHead& request,
                            const http::ResponseHead& response);

// The "build" step of parse -> validate -> build.
absl::StatusOr<RuntimeSnapshotPtr> BuildRuntimeSnapshot(const config::Config& config);
// For a reload: unchanged hosts keep their state (see upstream::BuildClusters) and a route
// whose match, upstream and cache settings are unchanged keeps its cache.
absl::StatusOr<RuntimeSnapshotPtr> BuildRuntimeSnapshot(const config::Config& config,
                                                        const RuntimeSnapshot* previous,
                                                        const upstream::DnsResults& dns = {});

}  // namespace confgate::server
