// Plain value types for the upstream file (design.md "The upstream file"). The loader fills
// them, the validator checks them, the builder turns them into immutable runtime objects.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "confgate/config/hash_key.h"
#include "confgate/config/retry_on.h"

namespace confgate::config {

// host:port as written in the file, plus the parsed parts.
struct SocketAddress {
  std::string host;  // IPv4 literal, bracket-less IPv6 literal, or a name
  uint16_t port = 0;
  std::string ToString() const;  // "1.2.3.4:80" or "[::1]:80"
};

struct TlsFiles {
  std::string certificate;  // PEM chain, leaf first
  std::string private_key;
  int line = 0;
};

// TLS on a listener: the first certificate is the default, SNI picks among the others by
// the names in their certificates.
struct ListenerTlsConfig {
  std::vector<TlsFiles> certificates;
  std::string min_version = "1.2";  // "1.2" or "1.3"
  int line = 0;
};

struct ListenerConfig {
  SocketAddress address;
  std::optional<ListenerTlsConfig> tls;
  int line = 0;
};

// TLS to an upstream's servers.
struct UpstreamTlsConfig {
  std::string ca_file;      // verify the servers against these CAs
  std::string server_name;  // SNI and the name to verify; empty = the server's host
  bool insecure_skip_verify = false;
  std::optional<TlsFiles> client_certificate;  // mTLS
  int line = 0;
};

struct AdminConfig {
  SocketAddress address{"127.0.0.1", 9901};
  std::string token_file;
};

struct LimitsConfig {
  uint64_t max_request_header_bytes = 32 * 1024;
  uint64_t max_request_body_bytes = 8 * 1024 * 1024;
  absl::Duration header_timeout = absl::Seconds(10);
  absl::Duration idle_timeout = absl::Seconds(60);
  uint64_t max_connections = 10000;
  absl::Duration drain_timeout = absl::Seconds(15);
};

struct AccessLogConfig {
  bool enabled = true;
  std::string path = "stdout";  // "stdout", "stderr" or a file path
};

struct ServerConfig {
  SocketAddress address;  // empty host when `dns` is used
  std::string dns;        // NAME:PORT, re-resolved every dns_refresh
  uint32_t weight = 1;
  bool backup = false;
  int line = 0;
};

struct StatusRange {
  int low = 200;
  int high = 399;
};

struct HealthCheckConfig {
  std::string type = "http";  // http | tcp
  std::string path = "/health";
  std::string host;  // Host header for http checks; empty = the server address
  absl::Duration interval = absl::Seconds(2);
  absl::Duration timeout = absl::Seconds(1);
  double jitter_fraction = 0.1;
  uint32_t healthy_threshold = 2;
  uint32_t unhealthy_threshold = 3;
  std::vector<StatusRange> expected_statuses{{200, 399}};
};

struct OutlierDetectionConfig {
  uint32_t consecutive_5xx = 5;
  uint32_t consecutive_gateway_failures = 3;
  absl::Duration base_ejection_time = absl::Seconds(30);
  absl::Duration max_ejection_time = absl::Seconds(300);
  uint32_t max_ejection_percent = 50;
  uint32_t min_available_hosts = 1;
};

struct RetryConfig {
  uint32_t attempts = 2;
  // connect_failure, reset, timeout, or a status code written as digits.
  RetryOn on = RetryOn::Defaults();
  uint32_t budget_percent = 20;
};

struct UpstreamTimeouts {
  absl::Duration connect = absl::Seconds(1);
  absl::Duration response = absl::Seconds(15);
  // All tries of one request together (connects, retries), up to the response head; routes
  // may override it. nullopt: the response timeout in force for the route.
  std::optional<absl::Duration> total;
};

struct KeepaliveConfig {
  uint32_t max_idle_per_worker = 64;
  absl::Duration idle_timeout = absl::Seconds(30);
};

struct UpstreamConfig {
  std::string name;
  std::string balancer = "round_robin";
  HashKeySpec hash_key;  // maglev only
  std::vector<ServerConfig> servers;
  std::optional<HealthCheckConfig> health_check;
  std::optional<OutlierDetectionConfig> outlier_detection;
  absl::Duration slow_start = absl::ZeroDuration();
  RetryConfig retries;
  UpstreamTimeouts timeouts;
  KeepaliveConfig keepalive;
  absl::Duration dns_refresh = absl::Seconds(5);
  // Below this share of available hosts (in the tier in use), balance over all of them, as
  // Envoy's panic threshold does.
  double panic_threshold = 0.5;
  // Read-only starts only once no host has been available this long.
  absl::Duration read_only_after = absl::Seconds(3);
  std::optional<UpstreamTlsConfig> tls;
  int line = 0;
};

enum class RouteKind { kRead, kWatch, kWrite, kAuto };

struct RouteMatch {
  std::string prefix = "/";
  std::vector<std::string> methods;        // empty = any method
  std::string query;                       // a query parameter that must be present; empty = any
  std::optional<std::string> query_value;  // and the raw value it must have; nullopt = any
};

// A watch route's own settings (design.md "Round two").
struct WatchConfig {
  std::string protocol = "none";  // only "none" for now: the watch hub adds the others
  // The longest a watch is held, from its start; zero = as long as the client wants (a long
  // poll with a duration is held for that duration plus a margin).
  absl::Duration max_hold = absl::ZeroDuration();
};

struct CachePersistConfig {
  std::string path;
  absl::Duration interval = absl::Seconds(10);
};

struct CacheConfig {
  bool enabled = false;
  uint64_t max_bytes = 64 * 1024 * 1024;
  uint64_t max_object_bytes = 1024 * 1024;
  absl::Duration default_ttl = absl::ZeroDuration();
  absl::Duration max_stale = absl::Hours(24);
  bool coalesce = true;
  std::vector<std::string> key_headers;
  std::optional<CachePersistConfig> persist;
};

struct RouteConfig {
  RouteMatch match;
  std::string upstream;
  RouteKind kind = RouteKind::kAuto;
  // Overrides the upstream's response timeout; for watches, the upper bound of the hold.
  std::optional<absl::Duration> response_timeout;
  // Overrides the upstream's timeouts.total (reads and writes; watches are held by their own
  // rules).
  std::optional<absl::Duration> total_timeout;
  std::optional<CacheConfig> cache;
  WatchConfig watch;
  int line = 0;
};

struct Config {
  std::vector<ListenerConfig> listeners;
  AdminConfig admin;
  uint32_t workers = 0;  // 0 = auto (one per core)
  LimitsConfig limits;
  AccessLogConfig access_log;
  // Kept in file order; names are unique after validation.
  std::vector<UpstreamConfig> upstreams;
  std::vector<RouteConfig> routes;
};

const char* RouteKindName(RouteKind kind);

}  // namespace confgate::config
