#include "confgate/cache/coalescer.h"

namespace confgate::cache {

bool Coalescer::JoinOrLead(const std::string& key, Waiter waiter) {
  MutexLock lock(&mu_);
  auto [it, inserted] = in_flight_.try_emplace(key);
  if (inserted) {
    return true;
  }
  it->second.push_back(std::move(waiter));
  return false;
}

void Coalescer::Complete(const std::string& key, CachedResponsePtr response) {
  std::vector<Waiter> waiters;
  {
    MutexLock lock(&mu_);
    auto it = in_flight_.find(key);
    if (it == in_flight_.end()) {
      return;
    }
    waiters = std::move(it->second);
    in_flight_.erase(it);
  }
  for (Waiter& waiter : waiters) {
    waiter(response);
  }
}

}  // namespace confgate::cache
