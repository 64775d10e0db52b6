// The control plane on the main thread, as wiring: the health-check scheduler
// (upstream/health), the outlier detector (upstream/outlier) and one mode tracker per upstream
// (mode/) over the current snapshot, plus operator drain. It composes a host's availability
// from its health, ejection and drain and publishes it through the host's atomics.
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
#include "confgate/mode/upstream_mode.h"
#include "confgate/server/runtime.h"
#include "confgate/upstream/health_scheduler.h"
#include "confgate/upstream/load_balancer.h"
#include "confgate/upstream/outlier_detector.h"

namespace confgate::server {

class ControlPlane final : public upstream::OutcomeReporter,
                           private upstream::OutlierDetector::Listener {
 public:
  ControlPlane(event::Dispatcher& dispatcher, TimeSource& time, RuntimeSnapshotPtr snapshot);
  // For tests: timers and probes from the test instead of the dispatcher and the network.
  ControlPlane(event::Dispatcher& dispatcher, TimeSource& time, RuntimeSnapshotPtr snapshot,
               upstream::TimerFactory timers, upstream::HealthCheckScheduler::ProbeFactory probes);
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

  // Moves to a reloaded snapshot: hosts whose HostId the reload kept (same upstream and
  // address) keep their checks, counters, ejection history and timers; new hosts start
  // unknown; removed hosts stop being checked.
  void Reload(RuntimeSnapshotPtr snapshot);

  mode::UpstreamMode mode(size_t cluster) const { return modes_[cluster]->mode(); }
  // For tests and /status: whether outlier detection has the host ejected.
  bool ejected(const upstream::Host& host) const { return outlier_.ejected(host.id()); }
  // For /status: the active-check state ("unchecked" without checks) and the ejection count n.
  const char* health(const upstream::Host& host) const;
  uint32_t ejection_count(const upstream::Host& host) const {
    return outlier_.ejection_count(host.id());
  }

 private:
  // upstream::OutlierDetector::Listener
  void PublishAvailability(const upstream::Host& host) override { Publish(host); }
  void OnEjectionChanged(const upstream::Host& host) override { UpdateAvailability(host); }
  bool HealthDown(const upstream::Host& host) override;

  void AdoptSnapshot(RuntimeSnapshotPtr snapshot);
  void OnCheckResult(const upstream::Host& host, upstream::CheckResult result, int status,
                     upstream::ActiveHealthTracker::Transition transition);
  // The host's availability from its health, ejection and drain, stored where the workers
  // read it; returns it. Called before the line that logs a change, so that whoever reads the
  // log (an operator, a test) never sees a change the workers do not see yet.
  bool Publish(const upstream::Host& host);
  // Publishes the host's availability, then recomputes its upstream's mode.
  void UpdateAvailability(const upstream::Host& host);
  const upstream::Host* Find(const std::string& upstream, const std::string& address) const;
  double Unit();

  event::Dispatcher& dispatcher_;
  TimeSource& time_;
  upstream::TimerFactory timers_;
  RuntimeSnapshotPtr snapshot_;
  upstream::SeededRandom random_;
  upstream::HealthCheckScheduler health_;
  upstream::OutlierDetector outlier_;
  std::vector<std::unique_ptr<mode::UpstreamModeTracker>> modes_;  // by cluster index
  std::unordered_map<upstream::HostId, size_t> cluster_of_;        // by HostId
};

}  // namespace confgate::server
