#include "upstream/lb/strategies.h"

namespace confgate::upstream {

Host* RoundRobinStrategy::ChooseHost(const PickContext& context) {
  for (size_t i = 0; i < hosts_.size(); ++i) {
    Host* host = hosts_[next_++ % hosts_.size()];
    if (Eligible(*host, context)) {
      return host;
    }
  }
  return nullptr;
}

}  // namespace confgate::upstream
