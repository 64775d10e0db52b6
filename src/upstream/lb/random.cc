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

Host* PowerOfTwoChoicesStrategy::PickUniform(const PickContext& context, const Host* other) {
  size_t count = hosts_.size();
  if (count == 0) {
    return nullptr;
  }
  // A few random probes find an eligible host at once in a healthy pool; a scan from a random
  // start bounds the search when most hosts are out.
  for (int probe = 0; probe < 4; ++probe) {
    Host* host = hosts_[params_.random.Next() % count];
    if (host != other && Eligible(*host, context)) {
      return host;
    }
  }
  size_t start = params_.random.Next() % count;
  for (size_t i = 0; i < count; ++i) {
    Host* host = hosts_[(start + i) % count];
    if (host != other && Eligible(*host, context)) {
      return host;
    }
  }
  return nullptr;
}

Host* PowerOfTwoChoicesStrategy::ChooseHost(const PickContext& context) {
  Host* first = PickUniform(context, nullptr);
  if (first == nullptr) {
    return nullptr;
  }
  Host* second = PickUniform(context, first);
  if (second == nullptr) {
    return first;
  }
  // Weighted comparison: load per unit of (slow-start adjusted) weight.
  MonotonicTime now = params_.time.Monotonic();
  double first_score =
      (first->state().load() + 1) / EffectiveWeight(*first, now, params_.slow_start);
  double second_score =
      (second->state().load() + 1) / EffectiveWeight(*second, now, params_.slow_start);
  return second_score < first_score ? second : first;
}

}  // namespace confgate::upstream
