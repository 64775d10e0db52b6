#include "server/admin_backend.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "confgate/common/log.h"
#include "server/metrics.h"

namespace confgate::server {
namespace {

std::string Quoted(absl::string_view text) {
  std::string out;
  AppendJsonString(text, out);
  return out;
}

std::string Seconds(absl::Duration duration) {
  return absl::StrFormat("%.3f", absl::ToDoubleSeconds(duration));
}

admin::AdminReply FromStatus(const absl::Status& status, const std::string& done) {
  if (status.ok()) {
    return admin::AdminReply{200, "application/json",
                             absl::StrCat("{\"result\":", Quoted(done), "}\n")};
  }
  int code = status.code() == absl::StatusCode::kNotFound ? 404 : 400;
  return admin::AdminReply{code, "application/json",
                           absl::StrCat("{\"error\":", Quoted(status.message()), "}\n")};
}

std::string LastFailureJson(const upstream::HostState::LastFailure& failure) {
  if (failure.reason == upstream::FailureReason::kNone) {
    return "null";
  }
  std::string out =
      absl::StrCat("{\"reason\":", Quoted(upstream::FailureReasonName(failure.reason)));
  if (failure.reason == upstream::FailureReason::kStatus) {
    absl::StrAppend(&out, ",\"status\":", failure.status);
  }
  absl::StrAppend(
      &out, ",\"time\":",
      Quoted(absl::FormatTime("%Y-%m-%d%ET%H:%M:%E3SZ", failure.when, absl::UTCTimeZone())), "}");
  return out;
}

}  // namespace

std::string ProcessAdminBackend::Metrics() {
  std::vector<RouteCache> caches;
  for (const router::Route& route : snapshot_->routes.routes()) {
    if (snapshot_->route_caches[route.index] != nullptr) {
      caches.push_back({route.upstream, snapshot_->route_caches[route.index].get()});
    }
  }
  ProcessCounters process;
  process.downstream_connections = shared_.downstream_connections.load();
  process.reloads_succeeded = reloads_succeeded_;
  process.reloads_failed = reloads_failed_;
  process.allocation_failures = shared_.allocation_failures.load();
  return RenderMetrics(snapshot_->clusters, caches, process);
}

std::string ProcessAdminBackend::StatusJson() {
  std::string out = absl::StrCat("{\"ready\":", ready_ ? "true" : "false", ",\"upstreams\":[");
  for (size_t c = 0; c < snapshot_->clusters.size(); ++c) {
    const upstream::Cluster& cluster = *snapshot_->clusters[c];
    absl::StrAppend(&out, c > 0 ? "," : "", "{\"name\":", Quoted(cluster.name()),
                    ",\"mode\":", Quoted(mode::UpstreamModeName(control_plane_.mode(c))),
                    ",\"balancer\":", Quoted(cluster.config().balancer), ",\"hosts\":[");
    for (size_t h = 0; h < cluster.hosts().size(); ++h) {
      upstream::Host& host = *cluster.hosts()[h];
      absl::StrAppend(
          &out, h > 0 ? "," : "", "{\"address\":", Quoted(host.address()),
          ",\"weight\":", host.weight(), ",\"backup\":", host.backup() ? "true" : "false",
          ",\"available\":", host.state().available() ? "true" : "false",
          ",\"health\":", Quoted(control_plane_.health(host)),
          ",\"ejected\":", host.state().ejected() ? "true" : "false",
          ",\"ejections\":", control_plane_.ejection_count(host),
          ",\"drained\":", host.state().drained() ? "true" : "false",
          ",\"active_requests\":", host.state().active_requests().load(),
          ",\"requests\":", host.state().requests(), ",\"failures\":", host.state().failures(),
          ",\"last_failure\":", LastFailureJson(host.state().last_failure()), "}");
    }
    out.append("]}");
  }
  out.append("]}\n");
  return out;
}

std::string ProcessAdminBackend::ConfigJson() {
  // The effective configuration; nothing here is secret (the admin token is read from a file
  // and only the file's path is shown).
  const config::Config& config = snapshot_->config;
  std::string out = "{\"listeners\":[";
  for (size_t i = 0; i < config.listeners.size(); ++i) {
    absl::StrAppend(&out, i > 0 ? "," : "", Quoted(config.listeners[i].address.ToString()));
  }
  absl::StrAppend(&out, "],\"admin\":{\"address\":", Quoted(config.admin.address.ToString()),
                  ",\"token_file\":", Quoted(config.admin.token_file.empty() ? "" : "[redacted]"),
                  "},\"workers\":", config.workers, ",\"limits\":{",
                  "\"max_request_header_bytes\":", config.limits.max_request_header_bytes,
                  ",\"max_request_body_bytes\":", config.limits.max_request_body_bytes,
                  ",\"header_timeout_s\":", Seconds(config.limits.header_timeout),
                  ",\"idle_timeout_s\":", Seconds(config.limits.idle_timeout),
                  ",\"max_connections\":", config.limits.max_connections,
                  ",\"drain_timeout_s\":", Seconds(config.limits.drain_timeout),
                  "},\"upstreams\":[");
  for (size_t u = 0; u < config.upstreams.size(); ++u) {
    const config::UpstreamConfig& upstream = config.upstreams[u];
    absl::StrAppend(&out, u > 0 ? "," : "", "{\"name\":", Quoted(upstream.name),
                    ",\"balancer\":", Quoted(upstream.balancer), ",\"servers\":[");
    for (size_t s = 0; s < upstream.servers.size(); ++s) {
      absl::StrAppend(&out, s > 0 ? "," : "",
                      "{\"address\":", Quoted(upstream.servers[s].address.ToString()),
                      ",\"weight\":", upstream.servers[s].weight,
                      ",\"backup\":", upstream.servers[s].backup ? "true" : "false", "}");
    }
    absl::StrAppend(
        &out, "],\"health_check\":", upstream.health_check.has_value() ? "true" : "false",
        ",\"outlier_detection\":", upstream.outlier_detection.has_value() ? "true" : "false",
        ",\"retries\":", upstream.retries.attempts,
        ",\"connect_timeout_s\":", Seconds(upstream.timeouts.connect),
        ",\"response_timeout_s\":", Seconds(upstream.timeouts.response), "}");
  }
  out.append("],\"routes\":[");
  for (size_t r = 0; r < config.routes.size(); ++r) {
    const config::RouteConfig& route = config.routes[r];
    absl::StrAppend(
        &out, r > 0 ? "," : "", "{\"prefix\":", Quoted(route.match.prefix), ",\"query\":",
        Quoted(route.match.query_value.has_value()
                   ? route.match.query + "=" + *route.match.query_value
                   : route.match.query),
        ",\"upstream\":", Quoted(route.upstream),
        ",\"kind\":", Quoted(config::RouteKindName(route.kind)),
        ",\"cache\":", route.cache.has_value() && route.cache->enabled ? "true" : "false", "}");
  }
  out.append("]}\n");
  return out;
}

void ProcessAdminBackend::Reload(admin::AdminResponder respond) {
  if (!reload_) {
    respond(FromStatus(absl::UnavailableError("not running"), ""));
    return;
  }
  reload_([respond = std::move(respond)](absl::Status reloaded) {
    respond(FromStatus(reloaded, "reloaded"));
  });
}

admin::AdminReply ProcessAdminBackend::SetHostDrained(const std::string& upstream,
                                                      const std::string& address, bool drained) {
  absl::Status status = drained ? control_plane_.DrainHost(upstream, address)
                                : control_plane_.EnableHost(upstream, address);
  return FromStatus(status, drained ? "drained" : "enabled");
}

admin::AdminReply ProcessAdminBackend::SetReadOnly(const std::string& upstream,
                                                   std::optional<bool> read_only) {
  absl::Status status = control_plane_.SetReadOnlyOverride(upstream, read_only);
  return FromStatus(status, read_only.has_value()
                                ? (*read_only ? "read_only forced on" : "read_only forced off")
                                : "automatic");
}

}  // namespace confgate::server
