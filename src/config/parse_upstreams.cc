// The upstreams section: servers, health checks, outlier detection, retries, timeouts.
#include <set>

#include "config/sections.h"

namespace confgate::config {
namespace {

constexpr uint32_t kMaxWeight = 1000;

void ParseServers(Validator& v, const YAML::Node& node, const std::string& path,
                  UpstreamConfig& upstream) {
  if (!node.IsSequence() || node.size() == 0) {
    v.Error(path, node, "must be a non-empty list of servers");
    return;
  }
  for (size_t i = 0; i < node.size(); ++i) {
    std::string server_path = absl::StrCat(path, "[", i, "]");
    ServerConfig server;
    server.line = LineOf(node[i]);
    bool has_address = false;
    bool has_dns = false;
    v.ForEachKey(node[i], server_path, {"address", "dns", "weight", "backup"},
                 [&](const std::string& key, const YAML::Node& value) {
                   std::string field = server_path + "." + key;
                   if (key == "address") {
                     has_address = true;
                     if (auto address = v.Address(value, field, false)) server.address = *address;
                   } else if (key == "dns") {
                     has_dns = true;
                     if (auto address = v.Address(value, field, false)) {
                       server.address = *address;
                       server.dns = address->ToString();
                     }
                   } else if (key == "weight") {
                     if (auto w = v.Integer(value, field, 1, kMaxWeight)) server.weight = *w;
                   } else if (key == "backup") {
                     if (auto b = v.Bool(value, field)) server.backup = *b;
                   }
                 });
    if (node[i].IsMap()) {
      if (has_address && has_dns) {
        v.Error(server_path, node[i], "give either address or dns, not both");
      } else if (!has_address && !has_dns) {
        v.Error(server_path + ".address", node[i], "is required");
      }
    }
    upstream.servers.push_back(server);
  }
}

void ParseStatusRanges(Validator& v, const YAML::Node& node, const std::string& path,
                       HealthCheckConfig& check) {
  if (!node.IsSequence() || node.size() == 0) {
    v.Error(path, node, "must be a non-empty list such as [200-399]");
    return;
  }
  check.expected_statuses.clear();
  for (size_t i = 0; i < node.size(); ++i) {
    std::string item_path = absl::StrCat(path, "[", i, "]");
    auto text = v.String(node[i], item_path);
    if (!text) {
      continue;
    }
    StatusRange range;
    size_t dash = text->find('-');
    bool ok = dash == std::string::npos
                  ? absl::SimpleAtoi(*text, &range.low) && (range.high = range.low, true)
                  : absl::SimpleAtoi(text->substr(0, dash), &range.low) &&
                        absl::SimpleAtoi(text->substr(dash + 1), &range.high);
    if (!ok || range.low < 100 || range.high > 599 || range.low > range.high) {
      v.Error(item_path, node[i],
              absl::StrCat(Quote(*text), " is not a status or range like 200-399"));
      continue;
    }
    check.expected_statuses.push_back(range);
  }
}

void ParseHealthCheck(Validator& v, const YAML::Node& node, const std::string& path,
                      UpstreamConfig& upstream) {
  HealthCheckConfig check;
  v.ForEachKey(node, path,
               {"type", "path", "host", "interval", "timeout", "jitter", "healthy_threshold",
                "unhealthy_threshold", "expected_statuses"},
               [&](const std::string& key, const YAML::Node& value) {
                 std::string field = path + "." + key;
                 if (key == "type") {
                   if (auto t = v.String(value, field)) {
                     if (*t != "http" && *t != "tcp") {
                       v.Error(field, value, absl::StrCat(Quote(*t), " is not http or tcp"));
                     } else {
                       check.type = *t;
                     }
                   }
                 } else if (key == "path") {
                   if (auto p = v.String(value, field)) {
                     if (p->empty() || (*p)[0] != '/') {
                       v.Error(field, value, "must start with /");
                     } else {
                       check.path = *p;
                     }
                   }
                 } else if (key == "host") {
                   if (auto h = v.String(value, field)) check.host = *h;
                 } else if (key == "interval") {
                   if (auto d = v.Duration(value, field)) check.interval = *d;
                 } else if (key == "timeout") {
                   if (auto d = v.Duration(value, field)) check.timeout = *d;
                 } else if (key == "jitter") {
                   if (auto t = v.String(value, field)) {
                     std::string error;
                     if (auto p = ParsePercent(*t, &error)) {
                       check.jitter_fraction = *p;
                     } else {
                       v.Error(field, value, error);
                     }
                   }
                 } else if (key == "healthy_threshold") {
                   if (auto n = v.Integer(value, field, 1, 100)) check.healthy_threshold = *n;
                 } else if (key == "unhealthy_threshold") {
                   if (auto n = v.Integer(value, field, 1, 100)) check.unhealthy_threshold = *n;
                 } else if (key == "expected_statuses") {
                   ParseStatusRanges(v, value, field, check);
                 }
               });
  upstream.health_check = check;
}

void ParseOutlierDetection(Validator& v, const YAML::Node& node, const std::string& path,
                           UpstreamConfig& upstream) {
  OutlierDetectionConfig outlier;
  v.ForEachKey(node, path,
               {"consecutive_5xx", "consecutive_gateway_failures", "base_ejection_time",
                "max_ejection_time", "max_ejection_percent", "min_available_hosts"},
               [&](const std::string& key, const YAML::Node& value) {
                 std::string field = path + "." + key;
                 if (key == "consecutive_5xx") {
                   if (auto n = v.Integer(value, field, 1, 1000)) outlier.consecutive_5xx = *n;
                 } else if (key == "consecutive_gateway_failures") {
                   if (auto n = v.Integer(value, field, 1, 1000)) {
                     outlier.consecutive_gateway_failures = *n;
                   }
                 } else if (key == "base_ejection_time") {
                   if (auto d = v.Duration(value, field)) outlier.base_ejection_time = *d;
                 } else if (key == "max_ejection_time") {
                   if (auto d = v.Duration(value, field)) outlier.max_ejection_time = *d;
                 } else if (key == "max_ejection_percent") {
                   if (auto n = v.Integer(value, field, 0, 100)) outlier.max_ejection_percent = *n;
                 } else if (key == "min_available_hosts") {
                   if (auto n = v.Integer(value, field, 0, 1000)) outlier.min_available_hosts = *n;
                 }
               });
  if (outlier.max_ejection_time < outlier.base_ejection_time) {
    v.Error(path + ".max_ejection_time", node, "must not be shorter than base_ejection_time");
  }
  upstream.outlier_detection = outlier;
}

// One `retries.on` item into its bit; false (and an error) when it is none of the forms.
bool AddRetryCondition(Validator& v, const YAML::Node& node, const std::string& path, RetryOn& on) {
  auto text = v.String(node, path);
  if (!text) {
    return false;
  }
  int status = 0;
  if (*text == "connect_failure") {
    on.Add(RetryOn::Condition::kConnectFailure);
  } else if (*text == "reset") {
    on.Add(RetryOn::Condition::kReset);
  } else if (*text == "timeout") {
    on.Add(RetryOn::Condition::kTimeout);
  } else if (text->size() == 3 && absl::SimpleAtoi(*text, &status) &&
             status >= RetryOn::kMinStatus && status <= RetryOn::kMaxStatus) {
    on.AddStatus(status);
  } else {
    v.Error(path, node,
            absl::StrCat(Quote(*text), " is not connect_failure, reset, timeout or a status"));
    return false;
  }
  return true;
}

void ParseRetries(Validator& v, const YAML::Node& node, const std::string& path,
                  UpstreamConfig& upstream) {
  v.ForEachKey(node, path, {"attempts", "on", "budget_percent"},
               [&](const std::string& key, const YAML::Node& value) {
                 std::string field = path + "." + key;
                 if (key == "attempts") {
                   if (auto n = v.Integer(value, field, 0, 10)) upstream.retries.attempts = *n;
                 } else if (key == "budget_percent") {
                   if (auto n = v.Integer(value, field, 0, 100))
                     upstream.retries.budget_percent = *n;
                 } else if (key == "on") {
                   if (!value.IsSequence()) {
                     v.Error(field, value, "must be a list");
                     return;
                   }
                   upstream.retries.on.Clear();
                   for (size_t i = 0; i < value.size(); ++i) {
                     AddRetryCondition(v, value[i], absl::StrCat(field, "[", i, "]"),
                                       upstream.retries.on);
                   }
                 }
               });
}

void ParseBalancer(Validator& v, const YAML::Node& value, const std::string& field,
                   UpstreamConfig& upstream) {
  if (auto b = v.String(value, field)) {
    static const std::set<std::string> kBalancers = {
        "round_robin", "weighted_round_robin", "random", "least_connections", "p2c", "maglev"};
    if (kBalancers.count(*b) > 0) {
      upstream.balancer = *b;
    } else {
      v.Error(field, value,
              absl::StrCat("unknown balancer ", Quote(*b),
                           " (round_robin, weighted_round_robin, random, "
                           "least_connections, p2c or maglev)"));
    }
  }
}

void ParseHashKey(Validator& v, const YAML::Node& value, const std::string& field,
                  UpstreamConfig& upstream) {
  if (auto h = v.String(value, field)) {
    if (std::optional<HashKeySpec> spec = ParseHashKeySpec(*h)) {
      upstream.hash_key = *std::move(spec);
    } else {
      v.Error(field, value,
              absl::StrCat(Quote(*h), " is not header:NAME, cookie:NAME, path or client_ip"));
    }
  }
}

void ParseUpstreamTimeouts(Validator& v, const YAML::Node& value, const std::string& field,
                           UpstreamConfig& upstream) {
  v.ForEachKey(value, field, {"connect", "response", "total"},
               [&](const std::string& k, const YAML::Node& t) {
                 if (auto d = v.Duration(t, field + "." + k)) {
                   if (k == "total") {
                     upstream.timeouts.total = *d;
                   } else {
                     (k == "connect" ? upstream.timeouts.connect : upstream.timeouts.response) = *d;
                   }
                 }
               });
}

void ParseKeepalive(Validator& v, const YAML::Node& value, const std::string& field,
                    UpstreamConfig& upstream) {
  v.ForEachKey(value, field, {"max_idle_per_worker", "idle_timeout"},
               [&](const std::string& k, const YAML::Node& t) {
                 if (k == "max_idle_per_worker") {
                   if (auto n = v.Integer(t, field + "." + k, 0, 100000)) {
                     upstream.keepalive.max_idle_per_worker = *n;
                   }
                 } else if (auto d = v.Duration(t, field + "." + k)) {
                   upstream.keepalive.idle_timeout = *d;
                 }
               });
}

void ParsePanicThreshold(Validator& v, const YAML::Node& value, const std::string& field,
                         UpstreamConfig& upstream) {
  if (auto t = v.String(value, field)) {
    std::string error;
    if (auto p = ParsePercent(*t, &error)) {
      upstream.panic_threshold = *p;
    } else {
      v.Error(field, value, error);
    }
  }
}

// One key of an upstream's mapping (the keys ParseUpstream allows).
void ParseUpstreamKey(Validator& v, const std::string& key, const YAML::Node& value,
                      const std::string& field, UpstreamConfig& upstream) {
  if (key == "balancer") {
    ParseBalancer(v, value, field, upstream);
  } else if (key == "hash_key") {
    ParseHashKey(v, value, field, upstream);
  } else if (key == "servers") {
    ParseServers(v, value, field, upstream);
  } else if (key == "health_check") {
    ParseHealthCheck(v, value, field, upstream);
  } else if (key == "outlier_detection") {
    ParseOutlierDetection(v, value, field, upstream);
  } else if (key == "slow_start") {
    if (auto d = v.Duration(value, field, true)) upstream.slow_start = *d;
  } else if (key == "retries") {
    ParseRetries(v, value, field, upstream);
  } else if (key == "timeouts") {
    ParseUpstreamTimeouts(v, value, field, upstream);
  } else if (key == "keepalive") {
    ParseKeepalive(v, value, field, upstream);
  } else if (key == "dns_refresh") {
    if (auto d = v.Duration(value, field)) upstream.dns_refresh = *d;
  } else if (key == "panic_threshold") {
    ParsePanicThreshold(v, value, field, upstream);
  } else if (key == "read_only_after") {
    if (auto d = v.Duration(value, field, true)) upstream.read_only_after = *d;
  } else if (key == "tls") {
    upstream.tls = ParseUpstreamTls(v, value, field);
  }
}

void ParseUpstream(Validator& v, const std::string& name, const YAML::Node& name_node,
                   const YAML::Node& node, Config& config) {
  std::string path = "upstreams." + Shortened(name);
  UpstreamConfig upstream;
  upstream.name = name;
  upstream.line = LineOf(name_node);
  bool has_servers = false;
  YAML::Node hash_key_node(YAML::NodeType::Undefined);
  v.ForEachKey(node, path,
               {"balancer", "hash_key", "servers", "health_check", "outlier_detection",
                "slow_start", "retries", "timeouts", "keepalive", "dns_refresh", "panic_threshold",
                "read_only_after", "tls"},
               [&](const std::string& key, const YAML::Node& value) {
                 if (key == "hash_key") {
                   hash_key_node = value;
                 } else if (key == "servers") {
                   has_servers = true;
                 }
                 ParseUpstreamKey(v, key, value, path + "." + key, upstream);
               });
  if (node.IsMap() && !has_servers) {
    v.Error(path + ".servers", name_node, "is required");
  }
  if (upstream.balancer == "maglev" && !hash_key_node) {
    v.Error(path + ".hash_key", name_node, "is required by the maglev balancer");
  } else if (upstream.balancer != "maglev" && hash_key_node) {
    v.Error(path + ".hash_key", hash_key_node, "is used only by the maglev balancer");
  }
  config.upstreams.push_back(std::move(upstream));
}

}  // namespace

void ParseUpstreams(Validator& v, const YAML::Node& node, Config& config) {
  if (!node.IsMap() || node.size() == 0) {
    v.Error("upstreams", node, "must be a non-empty mapping of upstream names");
    return;
  }
  std::set<std::string> names;
  for (auto it = node.begin(); it != node.end(); ++it) {
    std::string name = it->first.Scalar();
    std::string path = "upstreams." + Shortened(name);
    if (name.empty()) {
      v.Error("upstreams", it->first, "upstream name must not be empty");
      continue;
    }
    if (!names.insert(name).second) {
      v.Error(path, it->first, absl::StrCat("duplicate upstream name ", Quote(name)));
      continue;
    }
    ParseUpstream(v, name, it->first, it->second, config);
  }
}

}  // namespace confgate::config
