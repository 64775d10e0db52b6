#include <algorithm>
#include <numeric>

#include "upstream/lb/strategies.h"

namespace confgate::upstream {

MaglevStrategy::MaglevStrategy(std::vector<Host*> hosts, const BalancerParams&)
    : hosts_(std::move(hosts)), fallback_(hosts_) {
  if (hosts_.empty()) {
    return;
  }
  // Each host walks its own permutation of the slots (offset + j * skip), claiming the next
  // free one on each of its turns; a host of weight w gets w turns per round.
  std::vector<uint64_t> offset(hosts_.size());
  std::vector<uint64_t> skip(hosts_.size());
  std::vector<uint64_t> position(hosts_.size(), 0);
  for (size_t i = 0; i < hosts_.size(); ++i) {
    offset[i] = StableHash(hosts_[i]->address()) % kTableSize;
    skip[i] = StableHash(hosts_[i]->address() + "#skip") % (kTableSize - 1) + 1;
  }
  constexpr uint32_t kEmpty = UINT32_MAX;
  table_.assign(kTableSize, kEmpty);
  uint64_t filled = 0;
  while (filled < kTableSize) {
    for (size_t i = 0; i < hosts_.size() && filled < kTableSize; ++i) {
      for (uint32_t turn = 0; turn < hosts_[i]->weight() && filled < kTableSize; ++turn) {
        uint64_t slot = (offset[i] + position[i] * skip[i]) % kTableSize;
        while (table_[slot] != kEmpty) {
          ++position[i];
          slot = (offset[i] + position[i] * skip[i]) % kTableSize;
        }
        table_[slot] = static_cast<uint32_t>(i);
        ++position[i];
        ++filled;
      }
    }
  }
}

Host* MaglevStrategy::Owner(uint64_t hash) const {
  return hosts_.empty() ? nullptr : hosts_[table_[hash % kTableSize]];
}

Host* MaglevStrategy::ChooseHost(const PickContext& context) {
  if (hosts_.empty()) {
    return nullptr;
  }
  if (!context.hash.has_value()) {
    return fallback_.ChooseHost(context);
  }
  // Walk forward from the key's slot; a bounded walk sees every host long before the end.
  uint64_t slot = *context.hash % kTableSize;
  size_t limit = std::min<uint64_t>(kTableSize, 64 * hosts_.size() + 64);
  for (size_t step = 0; step < limit; ++step) {
    Host* host = hosts_[table_[(slot + step) % kTableSize]];
    if (Eligible(*host, context)) {
      return host;
    }
  }
  return fallback_.ChooseHost(context);
}

}  // namespace confgate::upstream
