// The six strategies behind CreateStrategy(). Each works over one host list (primaries or
// backups) and skips hosts that are unavailable or already tried.
#pragma once

#include <cstdint>
#include <vector>

#include "confgate/upstream/load_balancer.h"

namespace confgate::upstream {

// Even rotation over the eligible hosts.
class RoundRobinStrategy final : public LoadBalancer {
 public:
  explicit RoundRobinStrategy(std::vector<Host*> hosts) : hosts_(std::move(hosts)) {}
  // confgate::upstream::LoadBalancer
  Host* ChooseHost(const PickContext& context) override;

 private:
  std::vector<Host*> hosts_;
  size_t next_ = 0;
};

// nginx's smooth weighted round robin: every pick adds each host's weight to its running
// score, takes the highest and subtracts the total from it, so weights 5,1,1 give
// a a b a c a a rather than five a's in a row.
class WeightedRoundRobinStrategy final : public LoadBalancer {
 public:
  WeightedRoundRobinStrategy(std::vector<Host*> hosts, const BalancerParams& params);
  // confgate::upstream::LoadBalancer
  Host* ChooseHost(const PickContext& context) override;

 private:
  std::vector<Host*> hosts_;
  std::vector<double> current_;
  BalancerParams params_;
};

// Uniform over eligible hosts, weighted when weights differ.
class RandomStrategy final : public LoadBalancer {
 public:
  RandomStrategy(std::vector<Host*> hosts, const BalancerParams& params)
      : hosts_(std::move(hosts)), params_(params) {}
  // confgate::upstream::LoadBalancer
  Host* ChooseHost(const PickContext& context) override;

 private:
  std::vector<Host*> hosts_;
  BalancerParams params_;
};

// Fewest active requests (watches excluded) relative to weight; ties broken in rotation.
class LeastConnectionsStrategy final : public LoadBalancer {
 public:
  LeastConnectionsStrategy(std::vector<Host*> hosts, const BalancerParams& params)
      : hosts_(std::move(hosts)), params_(params) {}
  // confgate::upstream::LoadBalancer
  Host* ChooseHost(const PickContext& context) override;

 private:
  std::vector<Host*> hosts_;
  BalancerParams params_;
  size_t next_ = 0;
};

// Power of two choices: two different random eligible hosts, the one with less load per unit
// of weight wins. O(1) expected, whatever the pool size.
class PowerOfTwoChoicesStrategy final : public LoadBalancer {
 public:
  PowerOfTwoChoicesStrategy(std::vector<Host*> hosts, const BalancerParams& params)
      : hosts_(std::move(hosts)), params_(params) {}
  // confgate::upstream::LoadBalancer
  Host* ChooseHost(const PickContext& context) override;

 private:
  Host* PickUniform(const PickContext& context, const Host* other);

  std::vector<Host*> hosts_;
  BalancerParams params_;
};

// Maglev consistent hashing: a lookup table of kTableSize slots filled from each host's
// permutation (weights give proportional turns). A key maps to one slot; when that host is
// not eligible the following slots are tried, so only that host's keys move.
class MaglevStrategy final : public LoadBalancer {
 public:
  static constexpr uint64_t kTableSize = 65537;  // prime, far above any config pool
  MaglevStrategy(std::vector<Host*> hosts, const BalancerParams& params);
  // confgate::upstream::LoadBalancer
  Host* ChooseHost(const PickContext& context) override;
  // The host owning `hash` when every host is available (for tests).
  Host* Owner(uint64_t hash) const;

 private:
  std::vector<Host*> hosts_;
  std::vector<uint32_t> table_;  // slot -> index into hosts_
  RoundRobinStrategy fallback_;  // for requests without a hash key
};

}  // namespace confgate::upstream
