// Per-upstream modes (design.md "Host state and modes").
#pragma once

#include <optional>

#include "absl/time/time.h"
#include "confgate/common/time_source.h"

namespace confgate::mode {

enum class UpstreamMode { kNormal = 0, kFailover = 1, kReadOnly = 2 };

const char* UpstreamModeName(UpstreamMode mode);

// normal while a primary is available, failover while only backups are, read_only when no
// host is. An operator override of true forces read_only; false keeps the upstream out of
// read_only (requests are tried and fail upstream instead); nullopt leaves it automatic.
UpstreamMode ComputeMode(bool primary_available, bool backup_available,
                         std::optional<bool> read_only_override);

// What the control plane knows about an upstream's hosts when it decides the mode.
struct HostAvailability {
  bool primary = false;  // a primary is available
  bool backup = false;   // a backup is available
  // A host the operator has not drained exists: something requests could still be sent to.
  bool undrained = true;
};

// An upstream's mode over time. Read-only waits until no host has been available for
// `read_only_after`: a leader election marks every member of a cluster down for about a second,
// and requests in that window should reach the members (panic routing) rather than get 503.
// Only when every host is drained by the operator, or an override says so, is read-only at once.
class ModeController {
 public:
  explicit ModeController(absl::Duration read_only_after = absl::Seconds(3))
      : read_only_after_(read_only_after) {}

  void set_read_only_after(absl::Duration read_only_after) { read_only_after_ = read_only_after; }

  // The mode at `now`, after this change of availability or override (or none).
  UpstreamMode Update(const HostAvailability& hosts, std::optional<bool> read_only_override,
                      MonotonicTime now);
  // Set after Update() when the mode will change with time alone: how long until the next
  // Update() should run. nullopt when nothing is pending.
  std::optional<absl::Duration> recheck_in() const { return recheck_in_; }
  UpstreamMode mode() const { return mode_; }

 private:
  absl::Duration read_only_after_;
  UpstreamMode mode_ = UpstreamMode::kNormal;
  std::optional<MonotonicTime> none_available_since_;
  std::optional<absl::Duration> recheck_in_;
};

}  // namespace confgate::mode
