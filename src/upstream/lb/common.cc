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
  MonotonicTime since = host.state().available_since();
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
  return (context.panic ? !host.state().drained() : host.state().available()) &&
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

// How many of a tier's hosts are available now.
size_t AvailableCount(const std::vector<Host*>& hosts) {
  size_t available = 0;
  for (const Host* host : hosts) {
    available += host->state().available() ? 1 : 0;
  }
  return available;
}

class FailoverBalancer final : public LoadBalancer {
 public:
  FailoverBalancer(std::vector<Host*> primary_hosts, std::unique_ptr<LoadBalancer> primaries,
                   std::vector<Host*> backup_hosts, std::unique_ptr<LoadBalancer> backups,
                   double panic_threshold)
      : primary_hosts_(std::move(primary_hosts)),
        backup_hosts_(std::move(backup_hosts)),
        primaries_(std::move(primaries)),
        backups_(std::move(backups)),
        panic_threshold_(panic_threshold) {}

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
    // Counted per pick: availability changes on the main thread at any time, and pools of
    // config replicas are small.
    size_t primaries_available = AvailableCount(primary_hosts_);
    size_t backups_available = AvailableCount(backup_hosts_);
    bool none_available = primaries_available == 0 && backups_available == 0;
    PickContext pick = context;
    pick.panic = none_available || Below(primaries_available, primary_hosts_.size());
    if (Host* host = primaries_->ChooseHost(pick)) {
      return host;
    }
    pick.panic = none_available || Below(backups_available, backup_hosts_.size());
    return backups_->ChooseHost(pick);
  }

  // A tier with some available hosts, but fewer than the threshold's share, panics; a tier
  // with none leaves the traffic to the other tier (failover), unless no host is available.
  bool Below(size_t available, size_t total) const {
    return available > 0 &&
           static_cast<double>(available) < panic_threshold_ * static_cast<double>(total);
  }

  std::vector<Host*> primary_hosts_;
  std::vector<Host*> backup_hosts_;
  std::unique_ptr<LoadBalancer> primaries_;
  std::unique_ptr<LoadBalancer> backups_;
  double panic_threshold_;
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
  std::unique_ptr<LoadBalancer> primary_strategy =
      CreateStrategy(config.balancer, primaries, params);
  std::unique_ptr<LoadBalancer> backup_strategy = CreateStrategy(config.balancer, backups, params);
  return std::make_unique<FailoverBalancer>(std::move(primaries), std::move(primary_strategy),
                                            std::move(backups), std::move(backup_strategy),
                                            config.panic_threshold);
}

}  // namespace confgate::upstream
