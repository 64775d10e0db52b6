#include "server/metrics.h"

#include <array>
#include <map>

#include "absl/strings/str_cat.h"
#include "confgate/stats/exposition.h"
#include "confgate/upstream/health.h"

namespace confgate::server {
namespace {

using stats::Exposition;
using Type = stats::Exposition::Type;

// The families, declared in the order they are rendered.
struct Families {
  explicit Families(Exposition& out)
      : requests(out.AddFamily("requests_total",
                               "Client requests answered, by upstream and status code.",
                               Type::kCounter)),
        duration(out.AddFamily("request_duration_seconds",
                               "Time from request head to the end of the response.",
                               Type::kHistogram)),
        upstream_requests(out.AddFamily("upstream_requests_total",
                                        "Attempts sent to a host, by what they said about it.",
                                        Type::kCounter)),
        available(out.AddFamily("upstream_host_available",
                                "1 when the balancers may choose the host.", Type::kGauge)),
        ejected(out.AddFamily("upstream_host_ejected",
                              "1 while outlier detection has the host ejected.", Type::kGauge)),
        ejections(out.AddFamily("upstream_host_ejections_total",
                                "Ejections by outlier detection, by reason.", Type::kCounter)),
        active(out.AddFamily("upstream_active_requests", "Requests in flight to the host.",
                             Type::kGauge)),
        watches(
            out.AddFamily("watches_active", "Parked watch (long-poll) requests.", Type::kGauge)),
        checks(out.AddFamily("health_checks_total", "Active health checks, by result.",
                             Type::kCounter)),
        retries(out.AddFamily("retries_total", "Retries sent to another host.", Type::kCounter)),
        mode(out.AddFamily("upstream_mode", "0 normal, 1 failover, 2 read_only.", Type::kGauge)),
        lookups(out.AddFamily("cache_lookups_total", "Cache lookups, by result.", Type::kCounter)),
        cache_bytes(
            out.AddFamily("cache_bytes", "Bytes held by the response caches.", Type::kGauge)),
        connections(out.AddFamily("downstream_connections_active", "Open client connections.",
                                  Type::kGauge)),
        reloads(out.AddFamily("config_reloads_total", "Configuration reloads, by result.",
                              Type::kCounter)),
        no_memory(out.AddFamily("allocation_failures_total",
                                "Client connections closed because an allocation for them failed.",
                                Type::kCounter)) {}
  Exposition::FamilyId requests, duration, upstream_requests, available, ejected, ejections, active,
      watches, checks, retries, mode, lookups, cache_bytes, connections, reloads, no_memory;
};

void AddHost(Exposition& out, const Families& f, const upstream::Cluster& cluster,
             const upstream::Host& host) {
  upstream::HostState& state = host.state();
  stats::Labels labels = {{"upstream", cluster.name()}, {"host", host.address()}};
  for (int outcome = 0; outcome < 4; ++outcome) {
    stats::Labels with_outcome = labels;
    with_outcome.push_back(
        {"outcome", upstream::OutcomeName(static_cast<upstream::Outcome>(outcome))});
    out.Add(f.upstream_requests, with_outcome,
            static_cast<double>(state.outcomes()[outcome].load()));
  }
  out.Add(f.available, labels, state.available() ? 1 : 0);
  out.Add(f.ejected, labels, state.ejected() ? 1 : 0);
  for (int reason = 0; reason < 3; ++reason) {
    stats::Labels with_reason = labels;
    with_reason.push_back(
        {"reason", upstream::EjectionReasonName(static_cast<upstream::EjectionReason>(reason))});
    out.Add(f.ejections, with_reason, static_cast<double>(state.ejections()[reason].load()));
  }
  out.Add(f.active, labels, state.active_requests().load());
  if (cluster.config().health_check.has_value()) {
    for (int result = 0; result < 5; ++result) {
      stats::Labels with_result = labels;
      with_result.push_back(
          {"result", upstream::CheckResultName(static_cast<upstream::CheckResult>(result))});
      out.Add(f.checks, with_result, static_cast<double>(state.health_checks()[result].load()));
    }
  }
}

void AddCluster(Exposition& out, const Families& f, const upstream::Cluster& cluster) {
  const std::string& name = cluster.name();
  for (int code = 0; code < stats::CodeCounters::kSize; ++code) {
    uint64_t count = cluster.requests_by_code().count(code);
    if (count > 0) {
      out.Add(f.requests, {{"upstream", name}, {"code", absl::StrCat(code)}},
              static_cast<double>(count));
    }
  }
  out.AddHistogram(f.duration, {{"upstream", name}}, cluster.request_duration());
  out.Add(f.retries, {{"upstream", name}}, static_cast<double>(cluster.retries_total().load()));
  out.Add(f.watches, {{"upstream", name}}, static_cast<double>(cluster.watches_active().load()));
  out.Add(f.mode, {{"upstream", name}}, cluster.mode().load());
  for (const upstream::HostSharedPtr& host : cluster.hosts()) {
    AddHost(out, f, cluster, *host);
  }
}

}  // namespace

std::string RenderMetrics(const std::vector<upstream::ClusterSharedPtr>& clusters,
                          const std::vector<RouteCache>& caches, const ProcessCounters& process) {
  Exposition out;
  Families f(out);
  for (const upstream::ClusterSharedPtr& cluster : clusters) {
    AddCluster(out, f, *cluster);
  }
  // Routes of one upstream share its cache series.
  std::map<std::string, std::array<uint64_t, 5>> lookup_counts;
  uint64_t total_bytes = 0;
  for (const RouteCache& route : caches) {
    const cache::CacheStats& counters = route.cache->stats();
    std::array<uint64_t, 5>& sums = lookup_counts[route.upstream];
    sums[0] += counters.hits.load();
    sums[1] += counters.misses.load();
    sums[2] += counters.stale.load();
    sums[3] += counters.coalesced.load();
    sums[4] += counters.bypass.load();
    total_bytes += counters.bytes.load();
  }
  static const char* const kResults[] = {"hit", "miss", "stale", "coalesced", "bypass"};
  for (const auto& [upstream, sums] : lookup_counts) {
    for (int i = 0; i < 5; ++i) {
      out.Add(f.lookups, {{"upstream", upstream}, {"result", kResults[i]}},
              static_cast<double>(sums[i]));
    }
  }
  out.Add(f.cache_bytes, {}, static_cast<double>(total_bytes));
  out.Add(f.connections, {}, static_cast<double>(process.downstream_connections));
  out.Add(f.reloads, {{"result", "success"}}, static_cast<double>(process.reloads_succeeded));
  out.Add(f.reloads, {{"result", "failure"}}, static_cast<double>(process.reloads_failed));
  out.Add(f.no_memory, {}, static_cast<double>(process.allocation_failures));
  return out.Render();
}

}  // namespace confgate::server
