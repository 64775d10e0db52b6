// The control plane on the main thread: active health checks, outlier ejections with growing
// cooldowns and half-open trials, operator drain, and each upstream's mode. It decides host
// availability and publishes it (and the mode) through atomics the workers read.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "confgate/common/time_source.h"
#include "confgate/event/dispatcher.h"
#include "confgate/mode/mode.h"
#include "confgate/server/runtime.h"
#include "confgate/upstream/health.h"
#include "confgate/upstream/load_balancer.h"
#include "confgate/upstream/outlier.h"

namespace confgate::upstream {
class HealthProbe;
}

namespace confgate::server {

class ControlPlane final : public upstream::OutcomeReporter {
 public:
  ControlPlane(event::Dispatcher& dispatcher, TimeSource& time, RuntimeSnapshotPtr snapshot);
  ~ControlPlane() override;

  // Starts the health checks. `on_warm` runs once, when every checked host has a first result
  // or one interval + timeout has passed, whichever comes first (at once without checks).
  void Start(std::function<void()> on_warm);

  // upstream::OutcomeReporter; called on worker threads.
  void Report(upstream::Host& host, upstream::Outcome outcome) override;

  // Operator actions (the admin API calls these).
  absl::Status DrainHost(const std::string& upstream, const std::string& address);
  absl::Status EnableHost(const std::string& upstream, const std::string& address);
  absl::Status SetReadOnlyOverride(const std::string& upstream, std::optional<bool> read_only);

  // Moves to a reloaded snapshot: hosts kept by the reload keep their checks, counters,
  // ejection history and timers; new hosts start unknown; removed hosts stop being checked.
  void Reload(RuntimeSnapshotPtr snapshot);

  mode::UpstreamMode mode(size_t cluster) const;
  // For tests and /status: whether outlier detection has the host ejected.
  bool ejected(const upstream::Host& host) const;
  // For /status: the active-check state ("unknown" without checks) and the ejection count n.
  const char* health(const upstream::Host& host) const;
  uint32_t ejection_count(const upstream::Host& host) const;

 private:
  struct HostControl {
    size_t cluster = 0;
    upstream::HostSharedPtr host;
    std::unique_ptr<upstream::ActiveHealthTracker> tracker;  // null without health_check
    std::unique_ptr<upstream::HealthProbe> probe;            // the check in flight
    event::TimerPtr check_timer;
    upstream::EjectionRecord ejection;
    event::TimerPtr cooldown_timer;
    bool trial = false;  // cooldown over, waiting for the trial's outcome
    bool first_result_seen = false;
  };
  struct ClusterControl {
    upstream::ClusterSharedPtr cluster;
    std::optional<upstream::OutlierPolicy> outlier;
    std::optional<bool> read_only_override;
    mode::UpstreamMode mode = mode::UpstreamMode::kNormal;
    mode::ModeController controller;
    event::TimerPtr read_only_timer;  // ends the read_only_after dwell
  };

  void ScheduleCheck(HostControl& control, absl::Duration delay);
  void RunCheck(HostControl& control);
  void OnCheckResult(HostControl& control, upstream::CheckResult result, int status);
  void OnOutcome(const upstream::Host* host, upstream::Outcome outcome);
  void AdoptSnapshot(RuntimeSnapshotPtr snapshot,
                     std::unordered_map<const upstream::Host*, std::unique_ptr<HostControl>> kept,
                     const std::vector<std::pair<std::string, std::optional<bool>>>& overrides,
                     const std::vector<std::pair<std::string, mode::ModeController>>& modes);
  void Eject(HostControl& control, upstream::EjectionReason why);
  void OnCooldownOver(HostControl& control);
  void Readmit(HostControl& control, const char* reason);
  // The host's availability from its health, ejection and drain, stored where the workers
  // read it; returns it. Called before the line that logs a change, so that whoever reads the
  // log (an operator, a test) never sees a change the workers do not see yet.
  bool PublishAvailability(HostControl& control);
  // Recomputes the host's availability from its health, ejection and drain, then the mode.
  void UpdateAvailability(HostControl& control);
  void UpdateMode(ClusterControl& cluster, const std::string& reason);
  upstream::PoolCounts Counts(size_t cluster) const;
  HostControl* Find(const std::string& upstream, const std::string& address);
  void MaybeWarm();
  double Unit();

  event::Dispatcher& dispatcher_;
  TimeSource& time_;
  RuntimeSnapshotPtr snapshot_;
  upstream::SeededRandom random_;
  std::vector<ClusterControl> clusters_;
  std::vector<std::unique_ptr<HostControl>> hosts_;
  std::unordered_map<const upstream::Host*, HostControl*> by_host_;
  std::function<void()> on_warm_;
  event::TimerPtr warm_timer_;
  size_t awaiting_first_result_ = 0;
};

}  // namespace confgate::server
