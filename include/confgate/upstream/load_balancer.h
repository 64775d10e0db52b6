// Host choice for one upstream. Built from an immutable host set; shared by all workers, so
// implementations keep their rotation state in atomics.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "confgate/upstream/host.h"

namespace confgate::upstream {

class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;
  // nullptr when no host can take the request. `exclude` is a host already tried by this
  // request; it is skipped when another host exists.
  virtual Host* ChooseHost(const Host* exclude) = 0;
};

// Even rotation over the primaries; backups only when there is no primary.
class RoundRobinLoadBalancer final : public LoadBalancer {
 public:
  explicit RoundRobinLoadBalancer(const std::vector<HostSharedPtr>& hosts);

  // confgate::upstream::LoadBalancer
  Host* ChooseHost(const Host* exclude) override;

 private:
  std::vector<Host*> primaries_;
  std::vector<Host*> backups_;
  std::atomic<uint64_t> next_{0};
};

std::unique_ptr<LoadBalancer> CreateLoadBalancer(const config::UpstreamConfig& config,
                                                 const std::vector<HostSharedPtr>& hosts);

}  // namespace confgate::upstream
