// Upstream hosts and clusters: immutable descriptions built from the upstream file, plus the
// few live counters that workers update with atomics.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "confgate/config/config.h"

namespace confgate::upstream {

class LoadBalancer;

class Host {
 public:
  Host(std::string upstream, std::string address, const sockaddr* addr, socklen_t addr_len,
       uint32_t weight, bool backup);

  const std::string& upstream() const { return upstream_; }
  // "127.0.0.1:8081" as written in the file; names the host in logs and metrics.
  const std::string& address() const { return address_; }
  const sockaddr* sockaddr_ptr() const { return reinterpret_cast<const sockaddr*>(&addr_); }
  socklen_t sockaddr_len() const { return addr_len_; }
  uint32_t weight() const { return weight_; }
  bool backup() const { return backup_; }

  // Requests in flight to this host, across workers.
  std::atomic<uint32_t>& active_requests() { return active_requests_; }

 private:
  std::string upstream_;
  std::string address_;
  sockaddr_storage addr_{};
  socklen_t addr_len_;
  uint32_t weight_;
  bool backup_;
  std::atomic<uint32_t> active_requests_{0};
};

using HostSharedPtr = std::shared_ptr<Host>;

class Cluster {
 public:
  Cluster(const config::UpstreamConfig& config, std::vector<HostSharedPtr> hosts);
  ~Cluster();

  const std::string& name() const { return config_.name; }
  const config::UpstreamConfig& config() const { return config_; }
  const std::vector<HostSharedPtr>& hosts() const { return hosts_; }
  LoadBalancer& load_balancer() const { return *load_balancer_; }

 private:
  config::UpstreamConfig config_;
  std::vector<HostSharedPtr> hosts_;
  std::unique_ptr<LoadBalancer> load_balancer_;
};

using ClusterSharedPtr = std::shared_ptr<const Cluster>;

// Resolves every server address (numeric, or a name looked up once here, on the main thread)
// and builds the clusters in file order.
absl::StatusOr<std::vector<ClusterSharedPtr>> BuildClusters(const config::Config& config);

}  // namespace confgate::upstream
