#include "upstream/lb/strategies.h"

namespace confgate::upstream {

WeightedRoundRobinStrategy::WeightedRoundRobinStrategy(std::vector<Host*> hosts,
                                                       const BalancerParams& params)
    : hosts_(std::move(hosts)), current_(hosts_.size(), 0.0), params_(params) {}

Host* WeightedRoundRobinStrategy::ChooseHost(const PickContext& context) {
  MonotonicTime now = params_.time.Monotonic();
  double total = 0;
  int best = -1;
  for (size_t i = 0; i < hosts_.size(); ++i) {
    if (!Eligible(*hosts_[i], context)) {
      continue;
    }
    double weight = EffectiveWeight(*hosts_[i], now, params_.slow_start);
    current_[i] += weight;
    total += weight;
    if (best < 0 || current_[i] > current_[best]) {
      best = static_cast<int>(i);
    }
  }
  if (best < 0) {
    return nullptr;
  }
  current_[best] -= total;
  return hosts_[best];
}

}  // namespace confgate::upstream
