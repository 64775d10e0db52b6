// The process-wide sections of the upstream file (listeners, admin, workers, limits,
// access_log) and the TLS blocks of listeners and upstreams.
#include "config/sections.h"

namespace confgate::config {
namespace {

constexpr uint32_t kMaxWorkers = 256;

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

}  // namespace

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

}  // namespace confgate::config
