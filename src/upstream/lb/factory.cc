#include "upstream/lb/strategies.h"

namespace confgate::upstream {

std::unique_ptr<LoadBalancer> CreateStrategy(const std::string& name, std::vector<Host*> hosts,
                                             const BalancerParams& params) {
  if (name == "weighted_round_robin") {
    return std::make_unique<WeightedRoundRobinStrategy>(std::move(hosts), params);
  }
  if (name == "random") {
    return std::make_unique<RandomStrategy>(std::move(hosts), params);
  }
  if (name == "least_connections") {
    return std::make_unique<LeastConnectionsStrategy>(std::move(hosts), params);
  }
  if (name == "p2c") {
    return std::make_unique<PowerOfTwoChoicesStrategy>(std::move(hosts), params);
  }
  if (name == "maglev") {
    return std::make_unique<MaglevStrategy>(std::move(hosts), params);
  }
  // The validator admits no other names; round_robin is also the default.
  return std::make_unique<RoundRobinStrategy>(std::move(hosts));
}

}  // namespace confgate::upstream
