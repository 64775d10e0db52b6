#include "confgate/mode/upstream_mode.h"

#include "absl/strings/str_cat.h"
#include "confgate/common/log.h"

namespace confgate::mode {

UpstreamModeTracker::UpstreamModeTracker(const upstream::TimerFactory& timers, TimeSource& time)
    : time_(time),
      read_only_timer_(timers([this] { Update("no host available for read_only_after"); })) {}

void UpstreamModeTracker::SetCluster(upstream::ClusterSharedPtr cluster) {
  cluster_ = std::move(cluster);
  controller_.set_read_only_after(cluster_->config().read_only_after);
}

void UpstreamModeTracker::Publish() {
  cluster_->mode().store(static_cast<int>(mode_), std::memory_order_relaxed);
}

void UpstreamModeTracker::SetOverride(std::optional<bool> read_only) {
  read_only_override_ = read_only;
  Update(read_only.has_value() ? absl::StrCat("operator override read_only=", *read_only)
                               : std::string("operator override cleared"));
}

void UpstreamModeTracker::Update(const std::string& reason) {
  HostAvailability hosts;
  hosts.undrained = false;
  for (const upstream::HostSharedPtr& host : cluster_->hosts()) {
    if (host->state().available()) {
      (host->backup() ? hosts.backup : hosts.primary) = true;
    }
    hosts.undrained = hosts.undrained || !host->state().drained();
  }
  UpstreamMode next = controller_.Update(hosts, read_only_override_, time_.Monotonic());
  if (std::optional<absl::Duration> recheck = controller_.recheck_in()) {
    if (!read_only_timer_->enabled()) {
      Log(LogLevel::kWarn, "no host available: requests go to every host until read_only_after",
          {{"upstream", cluster_->name()},
           {"read_only_in_ms", absl::StrCat(absl::ToInt64Milliseconds(*recheck))},
           {"reason", reason}});
    }
    read_only_timer_->Enable(*recheck);
  } else {
    read_only_timer_->Disable();
  }
  if (next == mode_) {
    return;
  }
  UpstreamMode previous = mode_;
  mode_ = next;
  Publish();
  Log(LogLevel::kWarn, "upstream mode changed",
      {{"upstream", cluster_->name()},
       {"from", UpstreamModeName(previous)},
       {"to", UpstreamModeName(next)},
       {"reason", reason}});
}

}  // namespace confgate::mode
