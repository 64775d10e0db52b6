#include "upstream/lb/strategies.h"

namespace confgate::upstream {
namespace {

// A uniform double in [0, 1) from 53 random bits.
double Unit(RandomSource& random) { return (random.Next() >> 11) * 0x1.0p-53; }

}  // namespace

Host* RandomStrategy::ChooseHost(const PickContext& context) {
  MonotonicTime now = params_.time.Monotonic();
  double total = 0;
  for (Host* host : hosts_) {
    if (Eligible(*host, context)) {
      total += EffectiveWeight(*host, now, params_.slow_start);
    }
  }
  if (total <= 0) {
    return nullptr;
  }
  double point = Unit(params_.random) * total;
  Host* last = nullptr;
  for (Host* host : hosts_) {
    if (!Eligible(*host, context)) {
      continue;
    }
    last = host;
    point -= EffectiveWeight(*host, now, params_.slow_start);
    if (point < 0) {
      return host;
    }
  }
  return last;  // rounding left a sliver past the end
}

Host* PowerOfTwoChoicesStrategy::ChooseHost(const PickContext& context) {
  RandomStrategy draw(hosts_, params_);
  Host* first = draw.ChooseHost(context);
  if (first == nullptr) {
    return nullptr;
  }
  // The second choice is drawn from the others, so the two differ whenever they can.
  std::vector<const Host*> tried(context.tried.begin(), context.tried.end());
  tried.push_back(first);
  PickContext others = context;
  others.tried = tried;
  Host* second = draw.ChooseHost(others);
  if (second == nullptr) {
    return first;
  }
  MonotonicTime now = params_.time.Monotonic();
  double first_score = (first->load() + 1) / EffectiveWeight(*first, now, params_.slow_start);
  double second_score = (second->load() + 1) / EffectiveWeight(*second, now, params_.slow_start);
  return second_score < first_score ? second : first;
}

}  // namespace confgate::upstream
