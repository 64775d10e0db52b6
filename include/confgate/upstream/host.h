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
#include "confgate/upstream/outlier.h"

namespace confgate::upstream {

// Why an attempt on a host failed, as /status reports it.
enum class FailureReason : uint8_t { kNone, kConnect, kReset, kTimeout, kMalformed, kStatus };
const char* FailureReasonName(FailureReason reason);

class Host {
 public:
  // The last failed attempt on this host: what went wrong and when (the epoch when none did).
  struct LastFailure {
    FailureReason reason = FailureReason::kNone;
    int status = 0;  // the upstream's status, for kStatus
    absl::Time when = absl::UnixEpoch();
  };

  Host(std::string upstream, std::string address, const sockaddr* addr, socklen_t addr_len,
       uint32_t weight, bool backup);

  const std::string& upstream() const { return upstream_; }
  // "127.0.0.1:8081" as written in the file; names the host in logs and metrics.
  const std::string& address() const { return address_; }
  // The host part of address(), without the port or IPv6 brackets (for TLS names).
  std::string host_name() const;
  const sockaddr* sockaddr_ptr() const { return reinterpret_cast<const sockaddr*>(&addr_); }
  socklen_t sockaddr_len() const { return addr_len_; }
  uint32_t weight() const { return weight_; }
  bool backup() const { return backup_; }

  // Requests in flight to this host, across workers; watches are also counted on their own,
  // because a parked long-poll is not load.
  std::atomic<uint32_t>& active_requests() { return active_requests_; }
  std::atomic<uint32_t>& active_watches() { return active_watches_; }
  uint32_t load() const {
    uint32_t active = active_requests_.load(std::memory_order_relaxed);
    uint32_t watches = active_watches_.load(std::memory_order_relaxed);
    return active > watches ? active - watches : 0;
  }

  // Whether the balancers may choose this host. Health checks, outlier detection and operator
  // drain decide it; the data plane only reads it.
  bool available() const { return available_.load(std::memory_order_relaxed); }
  // Records a change of availability; a host that becomes available starts its slow start at
  // `now`.
  void SetAvailable(bool available, MonotonicTime now);
  // --- passive health, reported by workers ---
  // Counts an attempt's outcome; true when a consecutive-failure threshold of `outlier` is
  // reached (the main thread then decides on an ejection).
  bool RecordOutcome(Outcome outcome, const config::OutlierDetectionConfig& outlier);
  // The thresholds of the host's current outlier_detection (main thread sets them at start
  // and reload); 0 when detection is off.
  void SetOutlierThresholds(uint32_t consecutive_5xx, uint32_t consecutive_gateway_failures) {
    threshold_5xx_.store(consecutive_5xx, std::memory_order_relaxed);
    threshold_gateway_.store(consecutive_gateway_failures, std::memory_order_relaxed);
  }
  bool outlier_detection_enabled() const {
    return threshold_5xx_.load(std::memory_order_relaxed) > 0;
  }
  // RecordOutcome() with the host's own thresholds.
  bool RecordOutcome(Outcome outcome) {
    config::OutlierDetectionConfig thresholds;
    thresholds.consecutive_5xx = threshold_5xx_.load(std::memory_order_relaxed);
    thresholds.consecutive_gateway_failures = threshold_gateway_.load(std::memory_order_relaxed);
    return RecordOutcome(outcome, thresholds);
  }
  uint32_t consecutive_5xx() const { return consecutive_5xx_.load(std::memory_order_relaxed); }
  uint32_t consecutive_gateway_failures() const {
    return consecutive_gateway_failures_.load(std::memory_order_relaxed);
  }
  void ResetFailureCounts();

  // --- half-open: after its cooldown an ejected host takes exactly one trial request ---
  // Makes the host choosable for one trial (main thread).
  void OpenTrial();
  bool trial_open() const { return trial_open_.load(std::memory_order_acquire); }
  // A worker that picked a half-open host claims the trial; only one claim succeeds, and the
  // host is unavailable again until the trial's outcome is known.
  bool ClaimTrial();
  // The claimed trial ended; true when it was this host's trial request (main thread).
  bool TakeTrialInFlight() { return trial_in_flight_.exchange(false); }
  bool trial_in_flight() const { return trial_in_flight_.load(std::memory_order_relaxed); }

  // --- counters for the metrics endpoint ---
  // Attempts by upstream::Outcome; ejections by EjectionReason; checks by CheckResult.
  std::array<std::atomic<uint64_t>, 4>& outcomes() { return outcomes_; }
  std::array<std::atomic<uint64_t>, 3>& ejections() { return ejections_; }
  std::array<std::atomic<uint64_t>, 5>& health_checks() { return health_checks_; }
  // Attempts that ended (any outcome), and those that failed (a 5xx or a gateway failure).
  uint64_t requests() const;
  uint64_t failures() const;
  // Any worker; one atomic word, so a reader never sees a reason from one failure and the
  // time of another.
  void RecordFailure(FailureReason reason, int status, absl::Time when);
  LastFailure last_failure() const;

  // --- state shown to operators (set by the main thread) ---
  std::atomic<bool>& drained() { return drained_; }
  bool is_drained() const { return drained_.load(std::memory_order_relaxed); }
  std::atomic<bool>& ejected() { return ejected_; }

  // When the host last became available; the far past for hosts available from the start.
  MonotonicTime available_since() const {
    return MonotonicTime(
        std::chrono::nanoseconds(available_since_ns_.load(std::memory_order_relaxed)));
  }

 private:
  std::string upstream_;
  std::string address_;
  sockaddr_storage addr_{};
  socklen_t addr_len_;
  uint32_t weight_;
  bool backup_;
  std::atomic<uint32_t> active_requests_{0};
  std::atomic<uint32_t> active_watches_{0};
  std::atomic<bool> available_{true};
  std::atomic<uint32_t> consecutive_5xx_{0};
  std::atomic<uint32_t> consecutive_gateway_failures_{0};
  std::atomic<bool> trial_open_{false};
  std::atomic<bool> trial_in_flight_{false};
  std::atomic<bool> drained_{false};
  std::atomic<bool> ejected_{false};
  std::atomic<int64_t> available_since_ns_{std::numeric_limits<int64_t>::min()};
  std::atomic<uint32_t> threshold_5xx_{0};
  std::atomic<uint32_t> threshold_gateway_{0};
  std::array<std::atomic<uint64_t>, 4> outcomes_{};
  std::array<std::atomic<uint64_t>, 3> ejections_{};
  std::array<std::atomic<uint64_t>, 5> health_checks_{};
  // Unix milliseconds << 16 | reason << 12 | status (below 4096); 0 before any failure.
  std::atomic<uint64_t> last_failure_{0};
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
// For a reload: a server whose upstream, address, weight and backup flag are unchanged keeps
// its Host object from `previous`, and with it its health, ejection state and pooled
// connections.
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
