#include <algorithm>

#include "confgate/common/hash.h"
#include "confgate/upstream/load_balancer.h"

namespace confgate::upstream {

uint64_t SeededRandom::Next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double EffectiveWeight(const Host& host, MonotonicTime now, absl::Duration slow_start) {
  double weight = host.weight();
  if (slow_start <= absl::ZeroDuration()) {
    return weight;
  }
  MonotonicTime since = host.available_since();
  if (since == MonotonicTime::min() || now < since) {
    return weight;
  }
  double elapsed = absl::FDivDuration(absl::FromChrono(now - since), slow_start);
  if (elapsed >= 1.0) {
    return weight;
  }
  return weight * (0.1 + 0.9 * elapsed);
}

bool Eligible(const Host& host, const PickContext& context) {
  return host.available() &&
         std::find(context.tried.begin(), context.tried.end(), &host) == context.tried.end();
}

uint64_t StableHash(absl::string_view data) {
  uint64_t hash = Fnv1a64(data);
  // FNV's low bits are weak; mix them (murmur3 finalizer).
  hash ^= hash >> 33;
  hash *= 0xff51afd7ed558ccdULL;
  hash ^= hash >> 33;
  hash *= 0xc4ceb9fe1a85ec53ULL;
  hash ^= hash >> 33;
  return hash;
}

namespace {

class FailoverBalancer final : public LoadBalancer {
 public:
  FailoverBalancer(std::unique_ptr<LoadBalancer> primaries, std::unique_ptr<LoadBalancer> backups)
      : primaries_(std::move(primaries)), backups_(std::move(backups)) {}

  // confgate::upstream::LoadBalancer
  Host* ChooseHost(const PickContext& context) override {
    if (Host* host = PickOnce(context)) {
      return host;
    }
    if (context.tried.empty()) {
      return nullptr;
    }
    // Every available host was tried: a different host does not exist, so try one again.
    PickContext again = context;
    again.tried = {};
    return PickOnce(again);
  }

 private:
  Host* PickOnce(const PickContext& context) {
    if (Host* host = primaries_->ChooseHost(context)) {
      return host;
    }
    return backups_->ChooseHost(context);
  }

  std::unique_ptr<LoadBalancer> primaries_;
  std::unique_ptr<LoadBalancer> backups_;
};

}  // namespace

std::unique_ptr<LoadBalancer> CreateLoadBalancer(const config::UpstreamConfig& config,
                                                 const std::vector<HostSharedPtr>& hosts,
                                                 const BalancerParams& params) {
  std::vector<Host*> primaries;
  std::vector<Host*> backups;
  for (const HostSharedPtr& host : hosts) {
    (host->backup() ? backups : primaries).push_back(host.get());
  }
  return std::make_unique<FailoverBalancer>(
      CreateStrategy(config.balancer, std::move(primaries), params),
      CreateStrategy(config.balancer, std::move(backups), params));
}

}  // namespace confgate::upstream
