// Parse -> validate. yaml-cpp builds the node tree (its exceptions stop here); the walker
// below checks every key against what the file format allows and collects every problem with
// its field path and line, so one --check run shows them all.
#include "confgate/config/loader.h"

#include <yaml-cpp/yaml.h>

#include <functional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "confgate/common/file.h"
#include "confgate/config/units.h"
#include "confgate/http/hash_key.h"
#include "config/yaml_document.h"

namespace confgate::config {
namespace {

constexpr uint32_t kMaxWorkers = 256;
constexpr uint32_t kMaxWeight = 1000;

int LineOf(const YAML::Node& node) {
  YAML::Mark mark = node.Mark();
  return mark.line < 0 ? 0 : mark.line + 1;
}

// Values and keys come from the file: a message shows at most 100 bytes of one.
std::string Quote(const std::string& text) { return QuoteShortened(text); }

class Validator {
 public:
  std::vector<ConfigError> TakeErrors() { return std::move(errors_); }

  void Error(const std::string& path, const YAML::Node& node, std::string message) {
    errors_.push_back(ConfigError{path, LineOf(node), std::move(message)});
  }
  void Error(const std::string& path, int line, std::string message) {
    errors_.push_back(ConfigError{path, line, std::move(message)});
  }

  // Walks a mapping: calls `on_key` for every allowed key, reports unknown and repeated keys.
  void ForEachKey(const YAML::Node& node, const std::string& path,
                  std::initializer_list<const char*> allowed,
                  const std::function<void(const std::string&, const YAML::Node&)>& on_key) {
    if (!node.IsMap()) {
      Error(path, node, "must be a mapping");
      return;
    }
    std::set<std::string> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      std::string key = it->first.Scalar();
      std::string child_path = Join(path, key);
      if (!seen.insert(key).second) {
        Error(child_path, it->first, absl::StrCat("duplicate key ", Quote(key)));
        continue;
      }
      bool known = false;
      for (const char* name : allowed) {
        known = known || key == name;
      }
      if (!known) {
        Error(child_path, it->first,
              absl::StrCat("unknown key ", Quote(key),
                           " (expected one of: ", absl::StrJoin(allowed, ", "), ")"));
        continue;
      }
      on_key(key, it->second);
    }
  }

  static std::string Join(const std::string& path, const std::string& key) {
    return path.empty() ? Shortened(key) : absl::StrCat(path, ".", Shortened(key));
  }

  std::optional<std::string> String(const YAML::Node& node, const std::string& path) {
    if (!node.IsScalar()) {
      Error(path, node, "must be a scalar value");
      return std::nullopt;
    }
    return node.Scalar();
  }

  std::optional<bool> Bool(const YAML::Node& node, const std::string& path) {
    std::optional<std::string> text = String(node, path);
    if (!text) {
      return std::nullopt;
    }
    if (*text == "true") {
      return true;
    }
    if (*text == "false") {
      return false;
    }
    Error(path, node, absl::StrCat(Quote(*text), " is not true or false"));
    return std::nullopt;
  }

  std::optional<uint64_t> Integer(const YAML::Node& node, const std::string& path, uint64_t min,
                                  uint64_t max) {
    std::optional<std::string> text = String(node, path);
    if (!text) {
      return std::nullopt;
    }
    uint64_t value = 0;
    if (text->empty() || text->find_first_not_of("0123456789") != std::string::npos ||
        !absl::SimpleAtoi(*text, &value) || value < min || value > max) {
      Error(path, node,
            absl::StrCat(Quote(*text), " is not a whole number from ", min, " to ", max));
      return std::nullopt;
    }
    return value;
  }

  std::optional<absl::Duration> Duration(const YAML::Node& node, const std::string& path,
                                         bool allow_zero = false) {
    std::optional<std::string> text = String(node, path);
    if (!text) {
      return std::nullopt;
    }
    std::string error;
    std::optional<absl::Duration> value = ParseDuration(*text, &error);
    if (!value) {
      Error(path, node, error);
    } else if (!allow_zero && *value <= absl::ZeroDuration()) {
      Error(path, node, absl::StrCat(Quote(*text), " must be greater than zero"));
      return std::nullopt;
    }
    return value;
  }

  std::optional<uint64_t> Size(const YAML::Node& node, const std::string& path) {
    std::optional<std::string> text = String(node, path);
    if (!text) {
      return std::nullopt;
    }
    std::string error;
    std::optional<uint64_t> value = ParseSize(*text, &error);
    if (!value) {
      Error(path, node, error);
    } else if (*value == 0) {
      Error(path, node, absl::StrCat(Quote(*text), " must be greater than zero"));
      return std::nullopt;
    }
    return value;
  }

  std::optional<SocketAddress> Address(const YAML::Node& node, const std::string& path,
                                       bool allow_port_zero) {
    std::optional<std::string> text = String(node, path);
    if (!text) {
      return std::nullopt;
    }
    SocketAddress address;
    std::string port_text;
    if (!text->empty() && (*text)[0] == '[') {
      size_t close = text->find(']');
      if (close == std::string::npos || close + 1 >= text->size() || (*text)[close + 1] != ':') {
        Error(path, node, absl::StrCat(Quote(*text), " is not [IPv6]:port"));
        return std::nullopt;
      }
      address.host = text->substr(1, close - 1);
      port_text = text->substr(close + 2);
    } else {
      size_t colon = text->rfind(':');
      if (colon == std::string::npos) {
        Error(path, node, absl::StrCat(Quote(*text), " has no port"));
        return std::nullopt;
      }
      address.host = text->substr(0, colon);
      port_text = text->substr(colon + 1);
      if (address.host.find(':') != std::string::npos) {
        Error(path, node,
              absl::StrCat(Quote(*text), ": write IPv6 addresses in brackets, e.g. [::1]:8080"));
        return std::nullopt;
      }
    }
    if (address.host.empty()) {
      Error(path, node, absl::StrCat(Quote(*text), " has no host"));
      return std::nullopt;
    }
    uint32_t port = 0;
    if (port_text.empty() || port_text.find_first_not_of("0123456789") != std::string::npos ||
        !absl::SimpleAtoi(port_text, &port) || port > 65535 || (port == 0 && !allow_port_zero)) {
      Error(path, node, absl::StrCat(Quote(*text), " has an invalid port ", Quote(port_text)));
      return std::nullopt;
    }
    address.port = static_cast<uint16_t>(port);
    return address;
  }

 private:
  std::vector<ConfigError> errors_;
};

std::optional<TlsFiles> ParseTlsFiles(Validator& v, const YAML::Node& node,
                                      const std::string& path) {
  TlsFiles files;
  files.line = LineOf(node);
  v.ForEachKey(node, path, {"certificate", "private_key"},
               [&](const std::string& key, const YAML::Node& value) {
                 if (auto text = v.String(value, path + "." + key)) {
                   (key == "certificate" ? files.certificate : files.private_key) = *text;
                 }
               });
  if (!node.IsMap()) {
    return std::nullopt;
  }
  if (files.certificate.empty() || files.private_key.empty()) {
    v.Error(path, node, "needs both certificate and private_key");
    return std::nullopt;
  }
  return files;
}

ListenerTlsConfig ParseListenerTls(Validator& v, const YAML::Node& node, const std::string& path) {
  ListenerTlsConfig tls;
  tls.line = LineOf(node);
  TlsFiles single;
  v.ForEachKey(
      node, path, {"certificate", "private_key", "certificates", "min_version"},
      [&](const std::string& key, const YAML::Node& value) {
        std::string field = path + "." + key;
        if (key == "certificate" || key == "private_key") {
          if (auto text = v.String(value, field)) {
            (key == "certificate" ? single.certificate : single.private_key) = *text;
            single.line = LineOf(value);
          }
        } else if (key == "certificates") {
          if (!value.IsSequence() || value.size() == 0) {
            v.Error(field, value, "must be a non-empty list of {certificate, private_key}");
            return;
          }
          for (size_t i = 0; i < value.size(); ++i) {
            if (auto files = ParseTlsFiles(v, value[i], absl::StrCat(field, "[", i, "]"))) {
              tls.certificates.push_back(*files);
            }
          }
        } else if (key == "min_version") {
          if (auto text = v.String(value, field)) {
            if (*text != "1.2" && *text != "1.3") {
              v.Error(field, value, absl::StrCat(Quote(*text), " is not \"1.2\" or \"1.3\""));
            } else {
              tls.min_version = *text;
            }
          }
        }
      });
  if (!single.certificate.empty() || !single.private_key.empty()) {
    if (single.certificate.empty() || single.private_key.empty()) {
      v.Error(path, node, "needs both certificate and private_key");
    } else {
      // The single certificate is the default: it goes first.
      tls.certificates.insert(tls.certificates.begin(), single);
    }
  }
  if (node.IsMap() && tls.certificates.empty()) {
    v.Error(path, node, "needs a certificate and private_key (or a certificates list)");
  }
  return tls;
}

UpstreamTlsConfig ParseUpstreamTls(Validator& v, const YAML::Node& node, const std::string& path) {
  UpstreamTlsConfig tls;
  tls.line = LineOf(node);
  TlsFiles client;
  v.ForEachKey(node, path,
               {"ca_file", "server_name", "insecure_skip_verify", "certificate", "private_key"},
               [&](const std::string& key, const YAML::Node& value) {
                 std::string field = path + "." + key;
                 if (key == "insecure_skip_verify") {
                   if (auto b = v.Bool(value, field)) tls.insecure_skip_verify = *b;
                 } else if (auto text = v.String(value, field)) {
                   if (key == "ca_file") {
                     tls.ca_file = *text;
                   } else if (key == "server_name") {
                     tls.server_name = *text;
                   } else if (key == "certificate") {
                     client.certificate = *text;
                     client.line = LineOf(value);
                   } else {
                     client.private_key = *text;
                   }
                 }
               });
  if (!client.certificate.empty() || !client.private_key.empty()) {
    if (client.certificate.empty() || client.private_key.empty()) {
      v.Error(path, node, "a client certificate needs both certificate and private_key");
    } else {
      tls.client_certificate = client;
    }
  }
  if (node.IsMap() && tls.ca_file.empty() && !tls.insecure_skip_verify) {
    v.Error(path + ".ca_file", node,
            "is required to verify the servers (or set insecure_skip_verify: true)");
  }
  return tls;
}

void ParseListeners(Validator& v, const YAML::Node& node, Config& config) {
  if (!node.IsSequence() || node.size() == 0) {
    v.Error("listeners", node, "must be a non-empty list of listeners");
    return;
  }
  for (size_t i = 0; i < node.size(); ++i) {
    std::string path = absl::StrCat("listeners[", i, "]");
    ListenerConfig listener;
    listener.line = LineOf(node[i]);
    bool has_address = false;
    v.ForEachKey(node[i], path, {"address", "tls"},
                 [&](const std::string& key, const YAML::Node& value) {
                   if (key == "address") {
                     has_address = true;
                     if (auto address = v.Address(value, path + ".address", true)) {
                       listener.address = *address;
                     }
                   } else if (key == "tls") {
                     listener.tls = ParseListenerTls(v, value, path + ".tls");
                   }
                 });
    if (node[i].IsMap() && !has_address) {
      v.Error(path + ".address", node[i], "is required");
    }
    config.listeners.push_back(listener);
  }
}

void ParseAdmin(Validator& v, const YAML::Node& node, Config& config) {
  v.ForEachKey(node, "admin", {"address", "token_file"},
               [&](const std::string& key, const YAML::Node& value) {
                 if (key == "address") {
                   if (auto address = v.Address(value, "admin.address", true)) {
                     config.admin.address = *address;
                   }
                 } else if (auto text = v.String(value, "admin.token_file")) {
                   config.admin.token_file = *text;
                 }
               });
}

void ParseWorkers(Validator& v, const YAML::Node& node, Config& config) {
  if (node.IsScalar() && node.Scalar() == "auto") {
    config.workers = 0;
    return;
  }
  if (!node.IsScalar()) {
    v.Error("workers", node, "must be \"auto\" or a number");
    return;
  }
  if (auto value = v.Integer(node, "workers", 1, kMaxWorkers)) {
    config.workers = static_cast<uint32_t>(*value);
  }
}

void ParseLimits(Validator& v, const YAML::Node& node, Config& config) {
  LimitsConfig& limits = config.limits;
  v.ForEachKey(node, "limits",
               {"max_request_header_bytes", "max_request_body_bytes", "header_timeout",
                "idle_timeout", "max_connections", "drain_timeout"},
               [&](const std::string& key, const YAML::Node& value) {
                 std::string path = "limits." + key;
                 if (key == "max_request_header_bytes") {
                   if (auto size = v.Size(value, path)) {
                     if (*size < 1024 || *size > 1024 * 1024) {
                       v.Error(path, value, "must be between 1KiB and 1MiB");
                     } else {
                       limits.max_request_header_bytes = *size;
                     }
                   }
                 } else if (key == "max_request_body_bytes") {
                   if (auto size = v.Size(value, path)) limits.max_request_body_bytes = *size;
                 } else if (key == "header_timeout") {
                   if (auto d = v.Duration(value, path)) limits.header_timeout = *d;
                 } else if (key == "idle_timeout") {
                   if (auto d = v.Duration(value, path)) limits.idle_timeout = *d;
                 } else if (key == "max_connections") {
                   if (auto n = v.Integer(value, path, 1, 10'000'000)) limits.max_connections = *n;
                 } else if (key == "drain_timeout") {
                   if (auto d = v.Duration(value, path, true)) limits.drain_timeout = *d;
                 }
               });
}

void ParseAccessLog(Validator& v, const YAML::Node& node, Config& config) {
  v.ForEachKey(node, "access_log", {"enabled", "path"},
               [&](const std::string& key, const YAML::Node& value) {
                 if (key == "enabled") {
                   if (auto b = v.Bool(value, "access_log.enabled")) config.access_log.enabled = *b;
                 } else if (auto text = v.String(value, "access_log.path")) {
                   if (text->empty()) {
                     v.Error("access_log.path", value, "must not be empty");
                   } else {
                     config.access_log.path = *text;
                   }
                 }
               });
}

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
                   upstream.retries.on.clear();
                   for (size_t i = 0; i < value.size(); ++i) {
                     std::string item_path = absl::StrCat(field, "[", i, "]");
                     auto text = v.String(value[i], item_path);
                     if (!text) {
                       continue;
                     }
                     int status = 0;
                     bool is_status = text->size() == 3 && absl::SimpleAtoi(*text, &status) &&
                                      status >= 100 && status <= 599;
                     if (*text != "connect_failure" && *text != "reset" && *text != "timeout" &&
                         !is_status) {
                       v.Error(item_path, value[i],
                               absl::StrCat(Quote(*text),
                                            " is not connect_failure, reset, timeout or a status"));
                       continue;
                     }
                     upstream.retries.on.push_back(*text);
                   }
                 }
               });
}

void ParseUpstream(Validator& v, const std::string& name, const YAML::Node& name_node,
                   const YAML::Node& node, Config& config) {
  std::string path = "upstreams." + Shortened(name);
  UpstreamConfig upstream;
  upstream.name = name;
  upstream.line = LineOf(name_node);
  bool has_servers = false;
  YAML::Node hash_key_node(YAML::NodeType::Undefined);
  v.ForEachKey(
      node, path,
      {"balancer", "hash_key", "servers", "health_check", "outlier_detection", "slow_start",
       "retries", "timeouts", "keepalive", "dns_refresh", "panic_threshold", "read_only_after",
       "tls"},
      [&](const std::string& key, const YAML::Node& value) {
        std::string field = path + "." + key;
        if (key == "balancer") {
          if (auto b = v.String(value, field)) {
            static const std::set<std::string> kBalancers = {"round_robin", "weighted_round_robin",
                                                             "random",      "least_connections",
                                                             "p2c",         "maglev"};
            if (kBalancers.count(*b) > 0) {
              upstream.balancer = *b;
            } else {
              v.Error(field, value,
                      absl::StrCat("unknown balancer ", Quote(*b),
                                   " (round_robin, weighted_round_robin, random, "
                                   "least_connections, p2c or maglev)"));
            }
          }
        } else if (key == "hash_key") {
          hash_key_node = value;
          if (auto h = v.String(value, field)) {
            if (!http::IsValidHashKeySpec(*h)) {
              v.Error(
                  field, value,
                  absl::StrCat(Quote(*h), " is not header:NAME, cookie:NAME, path or client_ip"));
            } else {
              upstream.hash_key = *h;
            }
          }
        } else if (key == "servers") {
          has_servers = true;
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
          v.ForEachKey(
              value, field, {"connect", "response", "total"},
              [&](const std::string& k, const YAML::Node& t) {
                if (auto d = v.Duration(t, field + "." + k)) {
                  if (k == "total") {
                    upstream.timeouts.total = *d;
                  } else {
                    (k == "connect" ? upstream.timeouts.connect : upstream.timeouts.response) = *d;
                  }
                }
              });
        } else if (key == "keepalive") {
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
        } else if (key == "dns_refresh") {
          if (auto d = v.Duration(value, field)) upstream.dns_refresh = *d;
        } else if (key == "panic_threshold") {
          if (auto t = v.String(value, field)) {
            std::string error;
            if (auto p = ParsePercent(*t, &error)) {
              upstream.panic_threshold = *p;
            } else {
              v.Error(field, value, error);
            }
          }
        } else if (key == "read_only_after") {
          if (auto d = v.Duration(value, field, true)) upstream.read_only_after = *d;
        } else if (key == "tls") {
          upstream.tls = ParseUpstreamTls(v, value, field);
        }
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

void ParseCache(Validator& v, const YAML::Node& node, const std::string& path, RouteConfig& route) {
  CacheConfig cache;
  v.ForEachKey(node, path,
               {"enabled", "max_bytes", "max_object_bytes", "default_ttl", "max_stale", "coalesce",
                "key_headers", "persist"},
               [&](const std::string& key, const YAML::Node& value) {
                 std::string field = path + "." + key;
                 if (key == "enabled") {
                   if (auto b = v.Bool(value, field)) cache.enabled = *b;
                 } else if (key == "coalesce") {
                   if (auto b = v.Bool(value, field)) cache.coalesce = *b;
                 } else if (key == "max_bytes") {
                   if (auto s = v.Size(value, field)) cache.max_bytes = *s;
                 } else if (key == "max_object_bytes") {
                   if (auto s = v.Size(value, field)) cache.max_object_bytes = *s;
                 } else if (key == "default_ttl") {
                   if (auto d = v.Duration(value, field, true)) cache.default_ttl = *d;
                 } else if (key == "max_stale") {
                   if (auto d = v.Duration(value, field, true)) cache.max_stale = *d;
                 } else if (key == "key_headers") {
                   if (!value.IsSequence()) {
                     v.Error(field, value, "must be a list of header names");
                     return;
                   }
                   for (size_t i = 0; i < value.size(); ++i) {
                     if (auto h = v.String(value[i], absl::StrCat(field, "[", i, "]"))) {
                       cache.key_headers.push_back(*h);
                     }
                   }
                 } else if (key == "persist") {
                   CachePersistConfig persist;
                   v.ForEachKey(value, field, {"path", "interval"},
                                [&](const std::string& k, const YAML::Node& p) {
                                  if (k == "path") {
                                    if (auto s = v.String(p, field + ".path")) persist.path = *s;
                                  } else if (auto d = v.Duration(p, field + ".interval")) {
                                    persist.interval = *d;
                                  }
                                });
                   if (persist.path.empty()) {
                     v.Error(field + ".path", value, "is required");
                   }
                   cache.persist = persist;
                 }
               });
  if (cache.max_object_bytes > cache.max_bytes) {
    v.Error(path + ".max_object_bytes", node, "must not be larger than max_bytes");
  }
  route.cache = cache;
}

// `query: NAME` (present) or `query: {NAME: VALUE}` (present with that raw value).
void ParseQueryMatch(Validator& v, const YAML::Node& node, const std::string& path,
                     RouteMatch& match) {
  if (!node.IsMap()) {
    if (auto q = v.String(node, path)) match.query = *q;
    return;
  }
  if (node.size() != 1) {
    v.Error(path, node, "must name one parameter: NAME or {NAME: VALUE}");
    return;
  }
  auto entry = node.begin();
  std::optional<std::string> name = v.String(entry->first, path);
  std::optional<std::string> value = v.String(entry->second, path + "." + entry->first.Scalar());
  if (!name || !value) {
    return;
  }
  if (name->empty()) {
    v.Error(path, node, "parameter name must not be empty");
    return;
  }
  match.query = *name;
  match.query_value = *value;
}

void ParseWatch(Validator& v, const YAML::Node& node, const std::string& path, WatchConfig& watch) {
  v.ForEachKey(
      node, path, {"protocol", "max_hold"}, [&](const std::string& key, const YAML::Node& value) {
        std::string field = path + "." + key;
        if (key == "protocol") {
          if (auto p = v.String(value, field)) {
            if (*p == "none") {
              watch.protocol = *p;
            } else {
              v.Error(field, value,
                      absl::StrCat("unknown watch protocol ", Quote(*p), " (only none for now)"));
            }
          }
        } else if (auto d = v.Duration(value, field, true)) {
          watch.max_hold = *d;
        }
      });
}

void ParseRoutes(Validator& v, const YAML::Node& node, Config& config) {
  if (!node.IsSequence() || node.size() == 0) {
    v.Error("routes", node, "must be a non-empty list of routes");
    return;
  }
  for (size_t i = 0; i < node.size(); ++i) {
    std::string path = absl::StrCat("routes[", i, "]");
    RouteConfig route;
    route.line = LineOf(node[i]);
    bool has_match = false;
    bool has_upstream = false;
    bool has_watch = false;
    v.ForEachKey(
        node[i], path, {"match", "upstream", "kind", "timeouts", "cache", "watch"},
        [&](const std::string& key, const YAML::Node& value) {
          std::string field = path + "." + key;
          if (key == "match") {
            has_match = true;
            v.ForEachKey(
                value, field, {"prefix", "methods", "query"},
                [&](const std::string& k, const YAML::Node& m) {
                  std::string mfield = field + "." + k;
                  if (k == "prefix") {
                    if (auto p = v.String(m, mfield)) {
                      if (p->empty() || (*p)[0] != '/') {
                        v.Error(mfield, m, absl::StrCat(Quote(*p), " must start with /"));
                      } else {
                        route.match.prefix = *p;
                      }
                    }
                  } else if (k == "query") {
                    ParseQueryMatch(v, m, mfield, route.match);
                  } else if (k == "methods") {
                    if (!m.IsSequence() || m.size() == 0) {
                      v.Error(mfield, m, "must be a non-empty list of methods");
                      return;
                    }
                    for (size_t j = 0; j < m.size(); ++j) {
                      std::string item = absl::StrCat(mfield, "[", j, "]");
                      auto method = v.String(m[j], item);
                      if (!method) continue;
                      bool valid = !method->empty();
                      for (char c : *method) {
                        valid = valid && absl::ascii_isupper(static_cast<unsigned char>(c));
                      }
                      if (!valid) {
                        v.Error(item, m[j],
                                absl::StrCat(Quote(*method), " is not an uppercase method name"));
                      } else {
                        route.match.methods.push_back(*method);
                      }
                    }
                  }
                });
          } else if (key == "upstream") {
            has_upstream = true;
            if (auto u = v.String(value, field)) route.upstream = *u;
          } else if (key == "kind") {
            if (auto k = v.String(value, field)) {
              if (*k == "read") {
                route.kind = RouteKind::kRead;
              } else if (*k == "watch") {
                route.kind = RouteKind::kWatch;
              } else if (*k == "write") {
                route.kind = RouteKind::kWrite;
              } else if (*k == "auto") {
                route.kind = RouteKind::kAuto;
              } else {
                v.Error(field, value,
                        absl::StrCat("unknown kind ", Quote(*k), " (read, watch, write or auto)"));
              }
            }
          } else if (key == "timeouts") {
            v.ForEachKey(value, field, {"response", "total"},
                         [&](const std::string& k, const YAML::Node& t) {
                           if (auto d = v.Duration(t, field + "." + k)) {
                             (k == "total" ? route.total_timeout : route.response_timeout) = *d;
                           }
                         });
          } else if (key == "cache") {
            ParseCache(v, value, field, route);
          } else if (key == "watch") {
            has_watch = true;
            ParseWatch(v, value, field, route.watch);
          }
        });
    if (has_watch && route.kind != RouteKind::kWatch) {
      v.Error(path + ".watch", node[i]["watch"], "is used only by kind: watch routes");
    }
    if (node[i].IsMap()) {
      if (!has_match) {
        v.Error(path + ".match", node[i], "is required");
      }
      if (!has_upstream) {
        v.Error(path + ".upstream", node[i], "is required");
      } else {
        bool known = false;
        for (const UpstreamConfig& upstream : config.upstreams) {
          known = known || upstream.name == route.upstream;
        }
        if (!known && !route.upstream.empty()) {
          YAML::Node upstream_node = node[i]["upstream"];
          v.Error(path + ".upstream", upstream_node,
                  absl::StrCat("unknown upstream ", Quote(route.upstream)));
        }
      }
    }
    config.routes.push_back(std::move(route));
  }
}

}  // namespace

std::string ConfigError::ToString() const {
  std::string out = field_path;
  if (line > 0) {
    absl::StrAppend(&out, out.empty() ? "" : ": ", "line ", line);
  }
  absl::StrAppend(&out, out.empty() ? "" : ": ", message);
  return out;
}

LoadResult LoadConfigFromString(const std::string& yaml_text, const std::string& source_name) {
  LoadResult result;
  std::optional<YAML::Node> document = ParseSingleDocument(yaml_text, result.errors);
  if (!document.has_value()) {
    return result;
  }
  const YAML::Node& root = *document;
  Validator v;
  try {
    if (!root.IsMap()) {
      v.Error("", root, absl::StrCat(source_name, " must be a YAML mapping"));
      result.errors = v.TakeErrors();
      return result;
    }
    Config& config = result.config;
    // Upstreams first: routes refer to them, wherever they are in the file.
    if (root["upstreams"]) {
      ParseUpstreams(v, root["upstreams"], config);
    }
    bool has_listeners = false;
    bool has_upstreams = false;
    bool has_routes = false;
    v.ForEachKey(root, "",
                 {"listeners", "admin", "workers", "limits", "access_log", "upstreams", "routes"},
                 [&](const std::string& key, const YAML::Node& value) {
                   if (key == "listeners") {
                     has_listeners = true;
                     ParseListeners(v, value, config);
                   } else if (key == "admin") {
                     ParseAdmin(v, value, config);
                   } else if (key == "workers") {
                     ParseWorkers(v, value, config);
                   } else if (key == "limits") {
                     ParseLimits(v, value, config);
                   } else if (key == "access_log") {
                     ParseAccessLog(v, value, config);
                   } else if (key == "upstreams") {
                     has_upstreams = true;
                   } else if (key == "routes") {
                     has_routes = true;
                     ParseRoutes(v, value, config);
                   }
                 });
    if (!has_listeners) v.Error("listeners", 0, "is required");
    if (!has_upstreams) v.Error("upstreams", 0, "is required");
    if (!has_routes) v.Error("routes", 0, "is required");
  } catch (const YAML::Exception& e) {
    v.Error("", e.mark.line < 0 ? 0 : e.mark.line + 1,
            absl::StrCat("invalid YAML: ", Shortened(e.msg, 200)));
  }
  result.errors = v.TakeErrors();
  std::stable_sort(result.errors.begin(), result.errors.end(),
                   [](const ConfigError& a, const ConfigError& b) {
                     return (a.line == 0 ? INT32_MAX : a.line) < (b.line == 0 ? INT32_MAX : b.line);
                   });
  return result;
}

LoadResult LoadConfigFile(const std::string& path, uint64_t max_bytes) {
  absl::StatusOr<std::string> text = ReadRegularFile(path, max_bytes);
  if (!text.ok()) {
    LoadResult result;
    result.errors.push_back(ConfigError{"", 0, std::string(text.status().message())});
    return result;
  }
  return LoadConfigFromString(*text, path);
}

int RunConfigCheck(const std::string& path, std::ostream& out) {
  LoadResult result = LoadConfigFile(path);
  if (result.ok()) {
    out << path << ": ok\n";
    return 0;
  }
  for (const ConfigError& error : result.errors) {
    out << path << ": " << error.ToString() << "\n";
  }
  out << path << ": " << result.errors.size()
      << (result.errors.size() == 1 ? " problem" : " problems") << "\n";
  return 1;
}

}  // namespace confgate::config
