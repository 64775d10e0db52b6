// Upstream hosts and clusters: immutable descriptions built from the upstream file, plus the
// few live counters that workers update with atomics.
#pragma once

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "confgate/common/time_source.h"
#include "confgate/config/config.h"
#include "confgate/stats/counters.h"
#include "confgate/upstream/host_state.h"
#include "confgate/upstream/outlier.h"

namespace confgate::upstream {

// One upstream endpoint as the configuration describes it (immutable), and the HostState it
// shares with every Host a reload builds for the same (upstream, address).
class Host : public std::enable_shared_from_this<Host> {
 public:
  // `state`: the state of the same address in the previous snapshot; a fresh one when null.
  Host(std::string upstream, std::string address, const sockaddr* addr, socklen_t addr_len,
       uint32_t weight, bool backup, HostStateSharedPtr state = nullptr);

  // The live state, shared across reloads that keep the address.
  HostState& state() const { return *state_; }
  const HostStateSharedPtr& shared_state() const { return state_; }
  // The state's id: how other threads and later snapshots name this host.
  HostId id() const { return state_->id(); }

  const std::string& upstream() const { return upstream_; }
  // "127.0.0.1:8081" as written in the file; names the host in logs and metrics.
  const std::string& address() const { return address_; }
  // The host part of address(), without the port or IPv6 brackets (for TLS names).
  std::string host_name() const;
  const sockaddr* sockaddr_ptr() const { return reinterpret_cast<const sockaddr*>(&addr_); }
  socklen_t sockaddr_len() const { return addr_len_; }
  uint32_t weight() const { return weight_; }
  bool backup() const { return backup_; }

 private:
  // What a pick reads, first.
  HostStateSharedPtr state_;
  uint32_t weight_;
  bool backup_;
  socklen_t addr_len_;
  std::string upstream_;
  std::string address_;
  sockaddr_storage addr_{};
};

// Why outlier detection ejected a host, for the ejections counter.
enum class EjectionReason {
  kConsecutive5xx = 0,
  kConsecutiveGatewayFailures = 1,
  kTrialFailed = 2
};
const char* EjectionReasonName(EjectionReason reason);
const char* OutcomeName(Outcome outcome);

using HostSharedPtr = std::shared_ptr<Host>;

// An upstream's counters, kept across reloads: the Cluster a reload builds for the same
// upstream name takes them over, so the Prometheus counters never go back to 0 and requests
// still in flight on the previous snapshot count on the same figures.
struct ClusterStats {
  stats::CodeCounters requests_by_code;
  stats::LatencyHistogram request_duration;
  std::atomic<uint64_t> retries_total{0};
  std::atomic<int64_t> watches_active{0};
};

class Cluster {
 public:
  // `stats`: the previous Cluster's for a reload; new ones when null.
  Cluster(const config::UpstreamConfig& config, std::vector<HostSharedPtr> hosts,
          std::shared_ptr<ClusterStats> stats = nullptr);

  const std::string& name() const { return config_.name; }
  const config::UpstreamConfig& config() const { return config_; }
  const std::vector<HostSharedPtr>& hosts() const { return hosts_; }

  // Requests in flight and retries in flight across workers, for the retry budget.
  std::atomic<uint32_t>& active_requests() const { return active_requests_; }
  std::atomic<uint32_t>& active_retries() const { return active_retries_; }
  // Whether one more retry fits the budget: budget_percent of the requests in flight, and never
  // fewer than 3 concurrent retries, so a quiet upstream can still retry.
  bool RetryBudgetAllows() const;

  // The upstream's mode (mode::UpstreamMode as an int), published by the main thread.
  std::atomic<int>& mode() const { return mode_; }

  // Counters for the metrics endpoint.
  stats::CodeCounters& requests_by_code() const { return stats_->requests_by_code; }
  stats::LatencyHistogram& request_duration() const { return stats_->request_duration; }
  std::atomic<uint64_t>& retries_total() const { return stats_->retries_total; }
  std::atomic<int64_t>& watches_active() const { return stats_->watches_active; }
  const std::shared_ptr<ClusterStats>& shared_stats() const { return stats_; }

 private:
  config::UpstreamConfig config_;
  std::vector<HostSharedPtr> hosts_;
  mutable std::atomic<uint32_t> active_requests_{0};
  mutable std::atomic<uint32_t> active_retries_{0};
  mutable std::atomic<int> mode_{0};
  std::shared_ptr<ClusterStats> stats_;
};

using ClusterSharedPtr = std::shared_ptr<const Cluster>;

// Resolves every server address (numeric, or a name looked up once here, on the main thread)
// and builds the clusters in file order.
absl::StatusOr<std::vector<ClusterSharedPtr>> BuildClusters(const config::Config& config);
// For a reload: a server whose upstream and address are unchanged keeps its HostState from
// `previous` (health, ejection, trial, counters) whatever else changed; when its weight and
// backup flag are unchanged too it keeps the Host object itself.
absl::StatusOr<std::vector<ClusterSharedPtr>> BuildClusters(
    const config::Config& config, const std::vector<ClusterSharedPtr>& previous);

// The addresses (numeric "ip", no port) each name resolved to, by its NameKey ("name:port").
// An empty list: the name does not resolve (yet).
using DnsResults = std::map<std::string, std::vector<std::string>>;
// The DnsResults key of a server that needs a name looked up: its `dns:` NAME:PORT, or the
// NAME:PORT of an `address:` that is a name. Empty for an IP literal.
std::string NameKey(const config::ServerConfig& server);
// A `dns:` server becomes one host per resolved address ("ip:port"); an `address:` name one
// host labelled "name:port" at its first address. A name missing from `dns` is resolved here,
// blocking (on the main thread). A name that does not resolve gives no host (yet), never an
// error. A resolved address that was already a host keeps its Host object.
absl::StatusOr<std::vector<ClusterSharedPtr>> BuildClusters(
    const config::Config& config, const std::vector<ClusterSharedPtr>& previous,
    const DnsResults& dns);
// Resolves "name:port" with getaddrinfo (blocking): the numeric addresses, sorted, unique.
absl::StatusOr<std::vector<std::string>> ResolveNow(const config::SocketAddress& address);

}  // namespace confgate::upstream
