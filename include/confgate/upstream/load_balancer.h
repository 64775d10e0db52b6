// Host choice for one upstream. Each worker builds its own balancer objects from the immutable
// host set (so rotation state needs no locking); a balancer sees the hosts' weights,
// availability and live load, nothing else.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/span.h"
#include "confgate/common/time_source.h"
#include "confgate/config/config.h"
#include "confgate/upstream/host.h"

namespace confgate::upstream {

// Randomness the strategies draw from; tests inject a seeded one.
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual uint64_t Next() = 0;
};

// A fast, seeded generator (splitmix64) for the data plane and for tests.
class SeededRandom final : public RandomSource {
 public:
  explicit SeededRandom(uint64_t seed) : state_(seed) {}
  // confgate::upstream::RandomSource
  uint64_t Next() override;

 private:
  uint64_t state_;
};

// What one pick may depend on besides the hosts.
struct PickContext {
  // Hosts this request already tried; skipped while another available host exists.
  absl::Span<const Host* const> tried;
  // The request's hash for maglev (from hash_key); nullopt when the key is absent.
  std::optional<uint64_t> hash;
  // Panic routing: every host the operator has not drained is eligible, available or not.
  bool panic = false;
};

class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;
  // An available host, or nullptr when none is. The search is bounded by the host count.
  virtual Host* ChooseHost(const PickContext& context) = 0;
};

// Dependencies shared by the strategies.
struct BalancerParams {
  TimeSource& time;
  RandomSource& random;
  absl::Duration slow_start = absl::ZeroDuration();
};

// The weight a strategy should use now: the configured weight, ramped linearly from 10% to
// 100% over `slow_start` after the host last became available.
double EffectiveWeight(const Host& host, MonotonicTime now, absl::Duration slow_start);

// True when `host` can be picked: available (or, in panic, not drained) and not already tried
// by this request.
bool Eligible(const Host& host, const PickContext& context);

// One strategy over one set of hosts (no backup handling).
std::unique_ptr<LoadBalancer> CreateStrategy(const std::string& name, std::vector<Host*> hosts,
                                             const BalancerParams& params);

// The balancer for an upstream: its strategy over the primaries, and over the backups when no
// primary is available (failover). When every available host was tried already, the pick
// falls back to a tried one rather than failing. Panic routing (Envoy's semantics): when fewer
// than `panic_threshold` of the hosts of the tier in use are available, or no host at all is,
// the pick is over every host of that tier that is not drained.
std::unique_ptr<LoadBalancer> CreateLoadBalancer(const config::UpstreamConfig& config,
                                                 const std::vector<HostSharedPtr>& hosts,
                                                 const BalancerParams& params);

// A stable 64-bit hash (FNV-1a with a final mix) for maglev keys and host names.
uint64_t StableHash(absl::string_view data);

}  // namespace confgate::upstream
