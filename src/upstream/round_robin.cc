#include "confgate/upstream/load_balancer.h"

namespace confgate::upstream {

RoundRobinLoadBalancer::RoundRobinLoadBalancer(const std::vector<HostSharedPtr>& hosts) {
  for (const HostSharedPtr& host : hosts) {
    (host->backup() ? backups_ : primaries_).push_back(host.get());
  }
}

Host* RoundRobinLoadBalancer::ChooseHost(const Host* exclude) {
  const std::vector<Host*>& pool = primaries_.empty() ? backups_ : primaries_;
  if (pool.empty()) {
    return nullptr;
  }
  uint64_t start = next_.fetch_add(1, std::memory_order_relaxed);
  Host* host = pool[start % pool.size()];
  if (host == exclude && pool.size() > 1) {
    host = pool[(start + 1) % pool.size()];
  }
  return host;
}

std::unique_ptr<LoadBalancer> CreateLoadBalancer(const config::UpstreamConfig&,
                                                 const std::vector<HostSharedPtr>& hosts) {
  // The validator admits only round_robin in this release.
  return std::make_unique<RoundRobinLoadBalancer>(hosts);
}

}  // namespace confgate::upstream
