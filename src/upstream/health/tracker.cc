#include "confgate/upstream/health.h"

namespace confgate::upstream {

const char* ActiveStateName(ActiveState state) {
  switch (state) {
    case ActiveState::kUnknown:
      return "unknown";
    case ActiveState::kHealthy:
      return "healthy";
    case ActiveState::kUnhealthy:
      return "unhealthy";
  }
  return "unknown";
}

const char* CheckResultName(CheckResult result) {
  switch (result) {
    case CheckResult::kPass:
      return "pass";
    case CheckResult::kConnectFailure:
      return "connect_failure";
    case CheckResult::kTimeout:
      return "timeout";
    case CheckResult::kBadStatus:
      return "bad_status";
    case CheckResult::kReset:
      return "reset";
  }
  return "unknown";
}

ActiveHealthTracker::Transition ActiveHealthTracker::Record(bool pass) {
  if (state_ == ActiveState::kUnknown) {
    state_ = pass ? ActiveState::kHealthy : ActiveState::kUnhealthy;
    return pass ? Transition::kBecameHealthy : Transition::kBecameUnhealthy;
  }
  bool agrees = pass == (state_ == ActiveState::kHealthy);
  if (agrees) {
    run_ = 0;
    return Transition::kNone;
  }
  ++run_;
  uint32_t threshold = pass ? config_.healthy_threshold : config_.unhealthy_threshold;
  if (run_ < threshold) {
    return Transition::kNone;
  }
  run_ = 0;
  state_ = pass ? ActiveState::kHealthy : ActiveState::kUnhealthy;
  return pass ? Transition::kBecameHealthy : Transition::kBecameUnhealthy;
}

absl::Duration ActiveHealthTracker::NextDelay(double unit) const {
  absl::Duration base = changing() ? config_.interval / 2 : config_.interval;
  double spread = config_.jitter_fraction * (2 * unit - 1);  // in [-jitter, +jitter)
  return base * (1 + spread);
}

}  // namespace confgate::upstream
