// Request coalescing: concurrent misses for the same key, on any worker, share one upstream
// fetch. The first becomes the leader; the others wait for its response.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "confgate/cache/response.h"
#include "confgate/common/mutex.h"

namespace confgate::cache {

class Coalescer {
 public:
  // Runs on the leader's thread; a waiter's callback must hand the response to its own
  // thread (e.g. by posting to its dispatcher). nullptr means the leader's fetch failed.
  using Waiter = std::function<void(CachedResponsePtr response)>;

  // True when the caller leads the fetch for `key` and must call Complete(); false when it was
  // added as a waiter.
  bool JoinOrLead(const std::string& key, Waiter waiter);
  // Ends the fetch for `key`, handing `response` (or nullptr) to every waiter.
  void Complete(const std::string& key, CachedResponsePtr response);

 private:
  mutable Mutex mu_;
  absl::flat_hash_map<std::string, std::vector<Waiter>> in_flight_ ABSL_GUARDED_BY(mu_);
};

}  // namespace confgate::cache
