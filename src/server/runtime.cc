#include "confgate/server/runtime.h"

#include "absl/strings/str_cat.h"
#include "confgate/cache/policy.h"

namespace confgate::server {
namespace {

bool SameCachedRoute(const router::Route& a, const router::Route& b) {
  return a.match.prefix == b.match.prefix && a.match.methods == b.match.methods &&
         a.match.query == b.match.query && a.match.query_value == b.match.query_value &&
         a.upstream == b.upstream && a.cache.has_value() && b.cache.has_value() &&
         a.cache->max_bytes == b.cache->max_bytes &&
         a.cache->max_object_bytes == b.cache->max_object_bytes &&
         a.cache->key_headers == b.cache->key_headers;
}

}  // namespace

absl::StatusOr<RuntimeSnapshotPtr> BuildRuntimeSnapshot(const config::Config& config) {
  return BuildRuntimeSnapshot(config, nullptr);
}

absl::StatusOr<RuntimeSnapshotPtr> BuildRuntimeSnapshot(const config::Config& config,
                                                        const RuntimeSnapshot* previous,
                                                        const upstream::DnsResults& dns) {
  absl::StatusOr<std::vector<upstream::ClusterSharedPtr>> clusters = upstream::BuildClusters(
      config, previous != nullptr ? previous->clusters : std::vector<upstream::ClusterSharedPtr>{},
      dns);
  if (!clusters.ok()) {
    return clusters.status();
  }
  std::vector<std::string> names;
  for (const config::UpstreamConfig& upstream : config.upstreams) {
    names.push_back(upstream.name);
  }
  auto snapshot = std::make_shared<RuntimeSnapshot>(RuntimeSnapshot{
      config, *std::move(clusters), router::RouteTable(config.routes, names), {}, {}, {}});
  for (const router::Route& route : snapshot->routes.routes()) {
    std::shared_ptr<cache::ResponseCache> cache;
    if (route.cache.has_value() && previous != nullptr) {
      for (const router::Route& old_route : previous->routes.routes()) {
        if (previous->route_caches[old_route.index] != nullptr &&
            SameCachedRoute(route, old_route)) {
          cache = previous->route_caches[old_route.index];
          break;
        }
      }
    }
    if (route.cache.has_value() && cache == nullptr) {
      cache = std::make_shared<cache::ResponseCache>(route.cache->max_bytes,
                                                     route.cache->max_object_bytes);
    }
    snapshot->route_caches.push_back(std::move(cache));
  }
  for (size_t i = 0; i < config.listeners.size(); ++i) {
    std::shared_ptr<network::ServerTls> tls;
    if (config.listeners[i].tls.has_value()) {
      absl::StatusOr<std::shared_ptr<network::ServerTls>> created = network::ServerTls::Create(
          *config.listeners[i].tls, absl::StrCat("listeners[", i, "].tls"));
      if (!created.ok()) {
        return created.status();
      }
      tls = *std::move(created);
    }
    snapshot->listener_tls.push_back(std::move(tls));
  }
  for (const config::UpstreamConfig& upstream : config.upstreams) {
    std::shared_ptr<network::ClientTls> tls;
    if (upstream.tls.has_value()) {
      absl::StatusOr<std::shared_ptr<network::ClientTls>> created = network::ClientTls::Create(
          *upstream.tls, absl::StrCat("upstreams.", upstream.name, ".tls"));
      if (!created.ok()) {
        return created.status();
      }
      tls = *std::move(created);
    }
    snapshot->cluster_tls.push_back(std::move(tls));
  }
  return snapshot;
}

size_t InvalidateAfterWrite(const RuntimeSnapshot& snapshot, const http::RequestHead& request,
                            const http::ResponseHead& response) {
  std::vector<std::string> paths = cache::InvalidatedPaths(request, response);
  const absl::string_view* host = request.headers.Get(http::FieldId::kHost);
  size_t removed = 0;
  for (const std::shared_ptr<cache::ResponseCache>& route_cache : snapshot.route_caches) {
    for (const std::string& path : paths) {
      if (route_cache != nullptr) {
        removed += route_cache->Invalidate(host != nullptr ? *host : absl::string_view(), path);
      }
    }
  }
  return removed;
}

const network::ServerTls* RuntimeSnapshot::ListenerTls(const std::string& address) const {
  for (size_t i = 0; i < config.listeners.size(); ++i) {
    if (config.listeners[i].address.ToString() == address) {
      return listener_tls[i].get();
    }
  }
  return nullptr;
}

}  // namespace confgate::server
