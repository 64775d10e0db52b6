#include "confgate/stats/exposition.h"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "confgate/common/log.h"
#include "confgate/upstream/health.h"

namespace confgate::stats {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily Family(const std::string& name, const std::string& help, MetricType type) {
  return MetricFamily{"confgate_" + name, help, type, {}};
}

ClientMetric Metric(std::vector<ClientMetric::Label> labels) {
  ClientMetric metric;
  metric.label = std::move(labels);
  return metric;
}

void AddCounter(MetricFamily& family, std::vector<ClientMetric::Label> labels, double value) {
  ClientMetric metric = Metric(std::move(labels));
  metric.counter.value = value;
  family.metric.push_back(std::move(metric));
}

void AddGauge(MetricFamily& family, std::vector<ClientMetric::Label> labels, double value) {
  ClientMetric metric = Metric(std::move(labels));
  metric.gauge.value = value;
  family.metric.push_back(std::move(metric));
}

}  // namespace

std::string RenderMetrics(const std::vector<upstream::ClusterSharedPtr>& clusters,
                          const std::vector<RouteCache>& caches, const ProcessCounters& process) {
  MetricFamily requests =
      Family("requests_total", "Client requests answered, by upstream and status code.",
             MetricType::Counter);
  MetricFamily duration =
      Family("request_duration_seconds", "Time from request head to the end of the response.",
             MetricType::Histogram);
  MetricFamily upstream_requests =
      Family("upstream_requests_total", "Attempts sent to a host, by what they said about it.",
             MetricType::Counter);
  MetricFamily available = Family("upstream_host_available",
                                  "1 when the balancers may choose the host.", MetricType::Gauge);
  MetricFamily ejected =
      Family("upstream_host_ejected", "1 while outlier detection has the host ejected.",
             MetricType::Gauge);
  MetricFamily ejections =
      Family("upstream_host_ejections_total", "Ejections by outlier detection, by reason.",
             MetricType::Counter);
  MetricFamily active =
      Family("upstream_active_requests", "Requests in flight to the host.", MetricType::Gauge);
  MetricFamily watches =
      Family("watches_active", "Parked watch (long-poll) requests.", MetricType::Gauge);
  MetricFamily checks =
      Family("health_checks_total", "Active health checks, by result.", MetricType::Counter);
  MetricFamily retries =
      Family("retries_total", "Retries sent to another host.", MetricType::Counter);
  MetricFamily mode =
      Family("upstream_mode", "0 normal, 1 failover, 2 read_only.", MetricType::Gauge);
  MetricFamily lookups =
      Family("cache_lookups_total", "Cache lookups, by result.", MetricType::Counter);
  MetricFamily cache_bytes =
      Family("cache_bytes", "Bytes held by the response caches.", MetricType::Gauge);
  MetricFamily connections =
      Family("downstream_connections_active", "Open client connections.", MetricType::Gauge);
  MetricFamily reloads =
      Family("config_reloads_total", "Configuration reloads, by result.", MetricType::Counter);
  MetricFamily no_memory = Family(
      "allocation_failures_total",
      "Client connections closed because an allocation for them failed.", MetricType::Counter);

  for (const upstream::ClusterSharedPtr& cluster : clusters) {
    const std::string& name = cluster->name();
    for (int code = 0; code < CodeCounters::kSize; ++code) {
      uint64_t count = cluster->requests_by_code().count(code);
      if (count > 0) {
        AddCounter(requests, {{"upstream", name}, {"code", absl::StrCat(code)}},
                   static_cast<double>(count));
      }
    }
    ClientMetric histogram = Metric({{"upstream", name}});
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= LatencyHistogram::kBounds.size(); ++i) {
      cumulative += cluster->request_duration().bucket(i);
      ClientMetric::Bucket bucket;
      bucket.cumulative_count = cumulative;
      bucket.upper_bound = i < LatencyHistogram::kBounds.size()
                               ? LatencyHistogram::kBounds[i]
                               : std::numeric_limits<double>::infinity();
      histogram.histogram.bucket.push_back(bucket);
    }
    histogram.histogram.sample_count = cumulative;
    histogram.histogram.sample_sum = cluster->request_duration().sum_seconds();
    duration.metric.push_back(std::move(histogram));
    AddCounter(retries, {{"upstream", name}}, static_cast<double>(cluster->retries_total().load()));
    AddGauge(watches, {{"upstream", name}}, static_cast<double>(cluster->watches_active().load()));
    AddGauge(mode, {{"upstream", name}}, cluster->mode().load());
    for (const upstream::HostSharedPtr& host : cluster->hosts()) {
      std::vector<ClientMetric::Label> labels = {{"upstream", name}, {"host", host->address()}};
      for (int outcome = 0; outcome < 4; ++outcome) {
        std::vector<ClientMetric::Label> with_outcome = labels;
        with_outcome.push_back(
            {"outcome", upstream::OutcomeName(static_cast<upstream::Outcome>(outcome))});
        AddCounter(upstream_requests, with_outcome,
                   static_cast<double>(host->state().outcomes()[outcome].load()));
      }
      AddGauge(available, labels, host->state().available() ? 1 : 0);
      AddGauge(ejected, labels, host->state().ejected() ? 1 : 0);
      for (int reason = 0; reason < 3; ++reason) {
        std::vector<ClientMetric::Label> with_reason = labels;
        with_reason.push_back({"reason", upstream::EjectionReasonName(
                                             static_cast<upstream::EjectionReason>(reason))});
        AddCounter(ejections, with_reason,
                   static_cast<double>(host->state().ejections()[reason].load()));
      }
      AddGauge(active, labels, host->state().active_requests().load());
      if (cluster->config().health_check.has_value()) {
        for (int result = 0; result < 5; ++result) {
          std::vector<ClientMetric::Label> with_result = labels;
          with_result.push_back(
              {"result", upstream::CheckResultName(static_cast<upstream::CheckResult>(result))});
          AddCounter(checks, with_result,
                     static_cast<double>(host->state().health_checks()[result].load()));
        }
      }
    }
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
      AddCounter(lookups, {{"upstream", upstream}, {"result", kResults[i]}},
                 static_cast<double>(sums[i]));
    }
  }
  AddGauge(cache_bytes, {}, static_cast<double>(total_bytes));
  AddGauge(connections, {}, static_cast<double>(process.downstream_connections));
  AddCounter(reloads, {{"result", "success"}}, static_cast<double>(process.reloads_succeeded));
  AddCounter(reloads, {{"result", "failure"}}, static_cast<double>(process.reloads_failed));
  AddCounter(no_memory, {}, static_cast<double>(process.allocation_failures));

  std::vector<MetricFamily> families = {
      requests, duration, upstream_requests, available, ejected, ejections,   active,
      watches,  checks,   retries,           mode,      lookups, cache_bytes, connections,
      reloads,  no_memory};
  try {
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, families);
    return out.str();
  } catch (const std::exception& e) {
    Log(LogLevel::kError, "metrics serialization failed", {{"error", e.what()}});
    return "";
  }
}

}  // namespace confgate::stats
