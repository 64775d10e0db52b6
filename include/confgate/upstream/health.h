// Active health checking: the per-host threshold logic (pure, driven by results) and the
// result classification. The checker that runs the probes lives in src/upstream/health/.
#pragma once

#include <cstdint>

#include "absl/time/time.h"
#include "confgate/config/config.h"

namespace confgate::upstream {

enum class ActiveState { kUnknown, kHealthy, kUnhealthy };
const char* ActiveStateName(ActiveState state);

// How one probe ended.
enum class CheckResult { kPass, kConnectFailure, kTimeout, kBadStatus, kReset };
const char* CheckResultName(CheckResult result);

// healthy_threshold consecutive passes mark a host up, unhealthy_threshold consecutive
// failures mark it down, and a result opposite to the current run resets the count. A host
// starts unknown and its first result decides, so start-up does not wait for thresholds.
class ActiveHealthTracker {
 public:
  enum class Transition { kNone, kBecameHealthy, kBecameUnhealthy };

  explicit ActiveHealthTracker(const config::HealthCheckConfig& config) : config_(config) {}

  Transition Record(bool pass);
  // A reload changed the check settings; the state and the current run are kept.
  void SetConfig(const config::HealthCheckConfig& config) { config_ = config; }
  ActiveState state() const { return state_; }
  // A run towards the other state has started but not reached its threshold.
  bool changing() const { return run_ > 0; }
  // The wait before the next probe: the interval (halved while changing, so a state change is
  // confirmed sooner) spread by ±jitter. `unit` is uniform in [0, 1).
  absl::Duration NextDelay(double unit) const;

 private:
  config::HealthCheckConfig config_;  // a copy: the tracker outlives reloads
  ActiveState state_ = ActiveState::kUnknown;
  uint32_t run_ = 0;  // consecutive results that disagree with state_
};

}  // namespace confgate::upstream
