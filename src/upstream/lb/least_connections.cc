#include "upstream/lb/strategies.h"

namespace confgate::upstream {

Host* LeastConnectionsStrategy::ChooseHost(const PickContext& context) {
  if (hosts_.empty()) {
    return nullptr;
  }
  MonotonicTime now = params_.time.Monotonic();
  // Starting the scan at a rotating offset breaks ties in rotation.
  size_t start = next_++ % hosts_.size();
  Host* best = nullptr;
  double best_score = 0;
  for (size_t i = 0; i < hosts_.size(); ++i) {
    Host* host = hosts_[(start + i) % hosts_.size()];
    if (!Eligible(*host, context)) {
      continue;
    }
    double score = host->state().load() / EffectiveWeight(*host, now, params_.slow_start);
    if (best == nullptr || score < best_score) {
      best = host;
      best_score = score;
    }
  }
  return best;
}

}  // namespace confgate::upstream
