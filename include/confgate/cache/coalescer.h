// Request coalescing: concurrent misses for the same key, on any worker, share one upstream
// fetch. A read may only share a fetch sent upstream after it arrived (so a client that reads
// its own write never gets an answer fetched before the write): per key, one fetch is in
// flight, and the reads that arrive meanwhile queue behind it as one group, whose fetch is sent
// when the one in flight completes.
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
  // Runs on the thread that completed (or resigned) a fetch; a waiter's callback must hand the
  // call to its own thread (e.g. by posting to its dispatcher). With `lead` the waiter now
  // leads its group: it sends the fetch and must call Complete() or Resign(). Otherwise
  // `response` is the group's answer; nullptr means the fetch failed.
  using Waiter = std::function<void(bool lead, CachedResponsePtr response)>;

  // True when the caller leads the fetch for `key` and must call Complete() (or Resign());
  // false when it was queued as a waiter for the next fetch.
  bool JoinOrLead(const std::string& key, Waiter waiter);
  // Ends the fetch for `key`, handing `response` (or nullptr) to the group it served; the
  // group queued behind it gets a leader.
  void Complete(const std::string& key, CachedResponsePtr response);
  // The leader of `key`'s fetch gives up before it has an answer (its client left, or it was
  // promoted after finishing): another member of its group leads instead.
  void Resign(const std::string& key);

 private:
  struct Fetches {
    std::vector<Waiter> sharing;  // waiters served by the fetch of the current leader
    std::vector<Waiter> queued;   // arrived after that fetch was sent: share the next one
  };

  // Makes the queued group the current one and returns its leader, or erases `it` and returns
  // an empty function when nobody waits.
  Waiter PromoteQueued(absl::flat_hash_map<std::string, Fetches>::iterator it)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  absl::flat_hash_map<std::string, Fetches> in_flight_ ABSL_GUARDED_BY(mu_);
};

}  // namespace confgate::cache
