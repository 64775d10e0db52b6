// One upstream's mode as the control plane runs it: the ModeController fed with the hosts'
// availability, the operator override, the read_only_after timer, the publication to the
// workers (Cluster::mode()) and the warn logs of each transition.
#pragma once

#include <optional>
#include <string>

#include "confgate/common/time_source.h"
#include "confgate/mode/mode.h"
#include "confgate/upstream/host.h"
#include "confgate/upstream/timer_factory.h"

namespace confgate::mode {

class UpstreamModeTracker {
 public:
  UpstreamModeTracker(const upstream::TimerFactory& timers, TimeSource& time);

  // The upstream's cluster in the current snapshot (start-up or reload); the mode, the
  // override and the controller's history are kept.
  void SetCluster(upstream::ClusterSharedPtr cluster);
  // Stores the current mode where the workers of the current cluster read it.
  void Publish();
  // Recomputes the mode from the hosts' availability; `reason` goes to the logs.
  void Update(const std::string& reason);
  void SetOverride(std::optional<bool> read_only);

  UpstreamMode mode() const { return mode_; }
  const upstream::ClusterSharedPtr& cluster() const { return cluster_; }

 private:
  TimeSource& time_;
  upstream::ClusterSharedPtr cluster_;
  std::optional<bool> read_only_override_;
  UpstreamMode mode_ = UpstreamMode::kNormal;
  ModeController controller_;
  event::TimerPtr read_only_timer_;  // ends the read_only_after dwell
};

}  // namespace confgate::mode
