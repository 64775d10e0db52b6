#include "confgate/cache/coalescer.h"

#include <utility>

namespace confgate::cache {

bool Coalescer::JoinOrLead(const std::string& key, Waiter waiter) {
  MutexLock lock(&mu_);
  auto [it, inserted] = in_flight_.try_emplace(key);
  if (inserted) {
    return true;
  }
  // The fetch in flight may have left before this read arrived (before the write it follows,
  // say): the read waits for the next one.
  it->second.queued.push_back(std::move(waiter));
  return false;
}

Coalescer::Waiter Coalescer::PromoteQueued(absl::flat_hash_map<std::string, Fetches>::iterator it) {
  std::vector<Waiter>& queued = it->second.queued;
  if (queued.empty()) {
    in_flight_.erase(it);
    return Waiter();
  }
  Waiter leader = std::move(queued.front());
  it->second.sharing.assign(std::make_move_iterator(queued.begin() + 1),
                            std::make_move_iterator(queued.end()));
  queued.clear();
  return leader;
}

void Coalescer::Complete(const std::string& key, CachedResponsePtr response) {
  std::vector<Waiter> served;
  Waiter next_leader;
  {
    MutexLock lock(&mu_);
    auto it = in_flight_.find(key);
    if (it == in_flight_.end()) {
      return;
    }
    served = std::move(it->second.sharing);
    it->second.sharing.clear();
    next_leader = PromoteQueued(it);
  }
  for (Waiter& waiter : served) {
    waiter(false, response);
  }
  if (next_leader) {
    next_leader(true, nullptr);
  }
}

void Coalescer::Resign(const std::string& key) {
  Waiter next_leader;
  {
    MutexLock lock(&mu_);
    auto it = in_flight_.find(key);
    if (it == in_flight_.end()) {
      return;
    }
    std::vector<Waiter>& sharing = it->second.sharing;
    if (sharing.empty()) {
      // No fetch is in flight, so the queued reads may lead the next one at once.
      next_leader = PromoteQueued(it);
    } else {
      next_leader = std::move(sharing.front());
      sharing.erase(sharing.begin());
    }
  }
  if (next_leader) {
    next_leader(true, nullptr);
  }
}

}  // namespace confgate::cache
