#include "server/control_plane.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "confgate/common/log.h"
#include "upstream/health/probe.h"

namespace confgate::server {

ControlPlane::ControlPlane(event::Dispatcher& dispatcher, TimeSource& time,
                           RuntimeSnapshotPtr snapshot)
    : dispatcher_(dispatcher),
      time_(time),
      random_(static_cast<uint64_t>(absl::ToUnixNanos(time.SystemTime()))) {
  AdoptSnapshot(std::move(snapshot), {}, {}, {});
}

void ControlPlane::AdoptSnapshot(
    RuntimeSnapshotPtr snapshot,
    std::unordered_map<const upstream::Host*, std::unique_ptr<HostControl>> kept,
    const std::vector<std::pair<std::string, std::optional<bool>>>& overrides,
    const std::vector<std::pair<std::string, mode::ModeController>>& modes) {
  snapshot_ = std::move(snapshot);
  clusters_.clear();
  hosts_.clear();
  by_host_.clear();
  for (size_t c = 0; c < snapshot_->clusters.size(); ++c) {
    const upstream::ClusterSharedPtr& cluster = snapshot_->clusters[c];
    const config::UpstreamConfig& config = cluster->config();
    ClusterControl cluster_control;
    cluster_control.cluster = cluster;
    if (config.outlier_detection.has_value()) {
      cluster_control.outlier.emplace(*config.outlier_detection);
    }
    for (const auto& [name, read_only] : overrides) {
      if (name == cluster->name()) {
        cluster_control.read_only_override = read_only;
      }
    }
    for (const auto& [name, controller] : modes) {
      if (name == cluster->name()) {
        cluster_control.controller = controller;
        cluster_control.mode = controller.mode();
      }
    }
    cluster_control.controller.set_read_only_after(config.read_only_after);
    cluster_control.read_only_timer = dispatcher_.CreateTimer(
        [this, c] { UpdateMode(clusters_[c], "no host available for read_only_after"); });
    clusters_.push_back(std::move(cluster_control));
    for (const upstream::HostSharedPtr& host : cluster->hosts()) {
      host->SetOutlierThresholds(
          config.outlier_detection.has_value() ? config.outlier_detection->consecutive_5xx : 0,
          config.outlier_detection.has_value()
              ? config.outlier_detection->consecutive_gateway_failures
              : 0);
      std::unique_ptr<HostControl> control;
      auto previous = kept.find(host.get());
      if (previous != kept.end()) {
        control = std::move(previous->second);
      } else {
        control = std::make_unique<HostControl>();
        HostControl* raw = control.get();
        control->check_timer = dispatcher_.CreateTimer([this, raw] { RunCheck(*raw); });
        control->cooldown_timer = dispatcher_.CreateTimer([this, raw] { OnCooldownOver(*raw); });
      }
      control->cluster = c;
      control->host = host;
      if (config.health_check.has_value()) {
        if (control->tracker == nullptr) {
          control->tracker = std::make_unique<upstream::ActiveHealthTracker>(*config.health_check);
          control->first_result_seen = false;
        } else {
          control->tracker->SetConfig(*config.health_check);
        }
      } else {
        control->tracker.reset();
        control->check_timer->Disable();
      }
      by_host_[host.get()] = control.get();
      hosts_.push_back(std::move(control));
    }
  }
}

void ControlPlane::Reload(RuntimeSnapshotPtr snapshot) {
  std::unordered_map<const upstream::Host*, std::unique_ptr<HostControl>> kept;
  for (std::unique_ptr<HostControl>& control : hosts_) {
    kept[control->host.get()] = std::move(control);
  }
  std::vector<std::pair<std::string, std::optional<bool>>> overrides;
  std::vector<std::pair<std::string, mode::ModeController>> modes;
  for (const ClusterControl& cluster : clusters_) {
    overrides.emplace_back(cluster.cluster->name(), cluster.read_only_override);
    modes.emplace_back(cluster.cluster->name(), cluster.controller);
  }
  // Controls of removed hosts are destroyed once the new set is built; their probes and
  // timers go with them. New hosts are checked at once.
  AdoptSnapshot(std::move(snapshot), std::move(kept), overrides, modes);
  for (const auto& control : hosts_) {
    if (control->tracker != nullptr && !control->check_timer->enabled() &&
        control->probe == nullptr) {
      ScheduleCheck(*control, absl::ZeroDuration());
    }
  }
  for (ClusterControl& cluster : clusters_) {
    cluster.cluster->mode().store(static_cast<int>(cluster.mode), std::memory_order_relaxed);
    UpdateMode(cluster, "configuration reloaded");
  }
}

ControlPlane::~ControlPlane() = default;

double ControlPlane::Unit() { return (random_.Next() >> 11) * 0x1.0p-53; }

void ControlPlane::Start(std::function<void()> on_warm) {
  on_warm_ = std::move(on_warm);
  // An upstream whose names do not resolve yet has no host at all: read-only from the start.
  for (ClusterControl& cluster : clusters_) {
    if (cluster.cluster->hosts().empty()) {
      UpdateMode(cluster, "no host: its names do not resolve yet");
    }
  }
  absl::Duration longest_first_round = absl::ZeroDuration();
  for (const auto& control : hosts_) {
    if (control->tracker == nullptr) {
      continue;
    }
    ++awaiting_first_result_;
    const config::HealthCheckConfig& check =
        *clusters_[control->cluster].cluster->config().health_check;
    longest_first_round = std::max(longest_first_round, check.interval + check.timeout);
    ScheduleCheck(*control, absl::ZeroDuration());
  }
  if (awaiting_first_result_ == 0) {
    MaybeWarm();
    return;
  }
  // A slow checker never blocks start-up: hosts still unknown then count as available.
  warm_timer_ = dispatcher_.CreateTimer([this] {
    awaiting_first_result_ = 0;
    MaybeWarm();
  });
  warm_timer_->Enable(longest_first_round);
}

void ControlPlane::MaybeWarm() {
  if (awaiting_first_result_ == 0 && on_warm_) {
    std::function<void()> on_warm = std::move(on_warm_);
    on_warm_ = nullptr;
    if (warm_timer_ != nullptr) {
      warm_timer_->Disable();
    }
    on_warm();
  }
}

void ControlPlane::ScheduleCheck(HostControl& control, absl::Duration delay) {
  control.check_timer->Enable(delay);
}

void ControlPlane::RunCheck(HostControl& control) {
  const config::HealthCheckConfig& check =
      *clusters_[control.cluster].cluster->config().health_check;
  HostControl* raw = &control;
  control.probe = std::make_unique<upstream::HealthProbe>(
      dispatcher_, *control.host, check, snapshot_->cluster_tls[control.cluster],
      [this, raw](upstream::CheckResult result, int status) {
        OnCheckResult(*raw, result, status);
      });
}

void ControlPlane::OnCheckResult(HostControl& control, upstream::CheckResult result, int status) {
  struct ProbeHolder : event::DeferredDeletable {
    std::unique_ptr<upstream::HealthProbe> probe;
  };
  auto holder = std::make_unique<ProbeHolder>();
  holder->probe = std::move(control.probe);
  dispatcher_.DeferredDelete(std::move(holder));

  const std::string& upstream = clusters_[control.cluster].cluster->name();
  control.host->health_checks()[static_cast<size_t>(result)].fetch_add(1);
  bool pass = result == upstream::CheckResult::kPass;
  upstream::ActiveHealthTracker::Transition transition = control.tracker->Record(pass);
  if (transition == upstream::ActiveHealthTracker::Transition::kBecameUnhealthy) {
    PublishAvailability(control);
    Log(LogLevel::kWarn, "host marked down by health checks",
        {{"upstream", upstream},
         {"host", control.host->address()},
         {"result", upstream::CheckResultName(result)},
         {"status", absl::StrCat(status)}});
    UpdateAvailability(control);
  } else if (transition == upstream::ActiveHealthTracker::Transition::kBecameHealthy) {
    PublishAvailability(control);
    Log(LogLevel::kInfo, "host marked up by health checks",
        {{"upstream", upstream}, {"host", control.host->address()}});
    UpdateAvailability(control);
  } else if (!pass) {
    Log(LogLevel::kDebug, "health check failed",
        {{"upstream", upstream},
         {"host", control.host->address()},
         {"result", upstream::CheckResultName(result)}});
  }
  if (pass && control.trial) {
    Readmit(control, "health check passed after cooldown");
  }
  if (!control.first_result_seen) {
    control.first_result_seen = true;
    if (awaiting_first_result_ > 0) {
      --awaiting_first_result_;
    }
    MaybeWarm();
  }
  ScheduleCheck(control, control.tracker->NextDelay(Unit()));
}

void ControlPlane::Report(upstream::Host& host, upstream::Outcome outcome) {
  // Worker thread: only the host's atomics and a post.
  if (!host.outlier_detection_enabled()) {
    return;
  }
  bool threshold_reached = host.RecordOutcome(outcome);
  if (threshold_reached || host.trial_in_flight()) {
    const upstream::Host* target = &host;
    dispatcher_.Post([this, target, outcome] { OnOutcome(target, outcome); });
  }
}

void ControlPlane::OnOutcome(const upstream::Host* reported, upstream::Outcome outcome) {
  // A reload may have removed the host (and the host object with it) since the post.
  auto it = by_host_.find(reported);
  if (it == by_host_.end() || !clusters_[it->second->cluster].outlier.has_value()) {
    return;
  }
  HostControl& control = *it->second;
  upstream::Host& host = *control.host;
  const config::OutlierDetectionConfig& config = clusters_[control.cluster].outlier->config();
  if (control.trial && host.TakeTrialInFlight()) {
    switch (outcome) {
      case upstream::Outcome::kSuccess:
        Readmit(control, "trial request succeeded");
        return;
      case upstream::Outcome::kServerError:
      case upstream::Outcome::kGatewayFailure:
        Eject(control, upstream::EjectionReason::kTrialFailed);
        return;
      case upstream::Outcome::kNeutral:
        host.OpenTrial();  // the trial told nothing; the next request is the trial
        return;
    }
  }
  if (control.ejection.ejected) {
    return;
  }
  upstream::EjectionReason reason;
  if (host.consecutive_gateway_failures() >= config.consecutive_gateway_failures) {
    reason = upstream::EjectionReason::kConsecutiveGatewayFailures;
  } else if (host.consecutive_5xx() >= config.consecutive_5xx) {
    reason = upstream::EjectionReason::kConsecutive5xx;
  } else {
    return;  // a success came in between
  }
  if (!clusters_[control.cluster].outlier->MayEject(Counts(control.cluster))) {
    Log(LogLevel::kWarn, "outlier not ejected: the pool is at its ejection limit",
        {{"upstream", clusters_[control.cluster].cluster->name()},
         {"host", host.address()},
         {"reason", upstream::EjectionReasonName(reason)}});
    host.ResetFailureCounts();
    return;
  }
  Eject(control, reason);
}

void ControlPlane::Eject(HostControl& control, upstream::EjectionReason why) {
  const char* reason = upstream::EjectionReasonName(why);
  control.host->ejections()[static_cast<size_t>(why)].fetch_add(1);
  upstream::OutlierPolicy& policy = *clusters_[control.cluster].outlier;
  absl::Duration cooldown = policy.Eject(control.ejection, time_.Monotonic(), Unit());
  control.trial = false;
  control.host->ejected().store(true);
  control.host->ResetFailureCounts();
  control.cooldown_timer->Enable(cooldown);
  PublishAvailability(control);
  Log(LogLevel::kWarn, "host ejected",
      {{"upstream", clusters_[control.cluster].cluster->name()},
       {"host", control.host->address()},
       {"reason", reason},
       {"ejection", absl::StrCat(control.ejection.ejections)},
       {"cooldown_ms", absl::StrCat(absl::ToInt64Milliseconds(cooldown))}});
  UpdateAvailability(control);
}

void ControlPlane::OnCooldownOver(HostControl& control) {
  bool checks_say_down =
      control.tracker != nullptr && control.tracker->state() == upstream::ActiveState::kUnhealthy;
  if (checks_say_down || control.host->drained().load()) {
    // No trial for a host that is down or drained anyway: active checks (or enable) bring it
    // back; outlier detection lets go of it.
    Readmit(control, "cooldown over");
    return;
  }
  control.trial = true;
  control.host->OpenTrial();
  Log(LogLevel::kInfo, "host half-open: one trial request",
      {{"upstream", clusters_[control.cluster].cluster->name()},
       {"host", control.host->address()}});
  UpdateMode(clusters_[control.cluster], "host half-open");
}

void ControlPlane::Readmit(HostControl& control, const char* reason) {
  std::optional<upstream::OutlierPolicy>& policy = clusters_[control.cluster].outlier;
  if (policy.has_value()) {
    policy->Readmit(control.ejection, time_.Monotonic());
  } else {
    control.ejection.ejected = false;  // a reload turned outlier detection off
  }
  control.trial = false;
  control.cooldown_timer->Disable();
  control.host->ejected().store(false);
  control.host->ResetFailureCounts();
  // Through unavailable, so the re-admission starts the host's slow start.
  control.host->SetAvailable(false, time_.Monotonic());
  PublishAvailability(control);
  Log(LogLevel::kInfo, "host re-admitted",
      {{"upstream", clusters_[control.cluster].cluster->name()},
       {"host", control.host->address()},
       {"reason", reason}});
  UpdateAvailability(control);
}

bool ControlPlane::PublishAvailability(HostControl& control) {
  if (control.trial) {
    return control.host->available();  // the trial's outcome decides
  }
  bool healthy =
      control.tracker == nullptr || control.tracker->state() != upstream::ActiveState::kUnhealthy;
  bool available = healthy && !control.ejection.ejected && !control.host->drained().load();
  control.host->SetAvailable(available, time_.Monotonic());
  return available;
}

void ControlPlane::UpdateAvailability(HostControl& control) {
  if (control.trial) {
    UpdateMode(clusters_[control.cluster], "host half-open");
    return;
  }
  bool available = PublishAvailability(control);
  UpdateMode(clusters_[control.cluster], absl::StrCat("host ", control.host->address(),
                                                      available ? " available" : " unavailable"));
}

void ControlPlane::UpdateMode(ClusterControl& cluster, const std::string& reason) {
  mode::HostAvailability hosts;
  hosts.undrained = false;
  for (const upstream::HostSharedPtr& host : cluster.cluster->hosts()) {
    if (host->available()) {
      (host->backup() ? hosts.backup : hosts.primary) = true;
    }
    hosts.undrained = hosts.undrained || !host->drained().load();
  }
  mode::UpstreamMode next =
      cluster.controller.Update(hosts, cluster.read_only_override, time_.Monotonic());
  if (std::optional<absl::Duration> recheck = cluster.controller.recheck_in()) {
    if (!cluster.read_only_timer->enabled()) {
      Log(LogLevel::kWarn, "no host available: requests go to every host until read_only_after",
          {{"upstream", cluster.cluster->name()},
           {"read_only_in_ms", absl::StrCat(absl::ToInt64Milliseconds(*recheck))},
           {"reason", reason}});
    }
    cluster.read_only_timer->Enable(*recheck);
  } else {
    cluster.read_only_timer->Disable();
  }
  if (next == cluster.mode) {
    return;
  }
  mode::UpstreamMode previous = cluster.mode;
  cluster.mode = next;
  cluster.cluster->mode().store(static_cast<int>(next), std::memory_order_relaxed);
  Log(LogLevel::kWarn, "upstream mode changed",
      {{"upstream", cluster.cluster->name()},
       {"from", mode::UpstreamModeName(previous)},
       {"to", mode::UpstreamModeName(next)},
       {"reason", reason}});
}

upstream::PoolCounts ControlPlane::Counts(size_t cluster) const {
  upstream::PoolCounts counts;
  for (const auto& control : hosts_) {
    if (control->cluster != cluster) {
      continue;
    }
    ++counts.total;
    counts.available += control->host->available() ? 1 : 0;
    counts.ejected += control->ejection.ejected ? 1 : 0;
  }
  return counts;
}

ControlPlane::HostControl* ControlPlane::Find(const std::string& upstream,
                                              const std::string& address) {
  for (const auto& control : hosts_) {
    if (clusters_[control->cluster].cluster->name() == upstream &&
        control->host->address() == address) {
      return control.get();
    }
  }
  return nullptr;
}

absl::Status ControlPlane::DrainHost(const std::string& upstream, const std::string& address) {
  HostControl* control = Find(upstream, address);
  if (control == nullptr) {
    return absl::NotFoundError(absl::StrCat("no host ", address, " in upstream ", upstream));
  }
  control->host->drained().store(true);
  Log(LogLevel::kWarn, "host drained by operator", {{"upstream", upstream}, {"host", address}});
  UpdateAvailability(*control);
  return absl::OkStatus();
}

absl::Status ControlPlane::EnableHost(const std::string& upstream, const std::string& address) {
  HostControl* control = Find(upstream, address);
  if (control == nullptr) {
    return absl::NotFoundError(absl::StrCat("no host ", address, " in upstream ", upstream));
  }
  control->host->drained().store(false);
  Log(LogLevel::kInfo, "host enabled by operator", {{"upstream", upstream}, {"host", address}});
  UpdateAvailability(*control);
  return absl::OkStatus();
}

absl::Status ControlPlane::SetReadOnlyOverride(const std::string& upstream,
                                               std::optional<bool> read_only) {
  for (ClusterControl& cluster : clusters_) {
    if (cluster.cluster->name() == upstream) {
      cluster.read_only_override = read_only;
      UpdateMode(cluster, read_only.has_value()
                              ? absl::StrCat("operator override read_only=", *read_only)
                              : std::string("operator override cleared"));
      return absl::OkStatus();
    }
  }
  return absl::NotFoundError(absl::StrCat("no upstream ", upstream));
}

mode::UpstreamMode ControlPlane::mode(size_t cluster) const { return clusters_[cluster].mode; }

bool ControlPlane::ejected(const upstream::Host& host) const {
  auto it = by_host_.find(&host);
  return it != by_host_.end() && it->second->ejection.ejected;
}

const char* ControlPlane::health(const upstream::Host& host) const {
  auto it = by_host_.find(&host);
  if (it == by_host_.end() || it->second->tracker == nullptr) {
    return "unchecked";
  }
  return upstream::ActiveStateName(it->second->tracker->state());
}

uint32_t ControlPlane::ejection_count(const upstream::Host& host) const {
  auto it = by_host_.find(&host);
  return it == by_host_.end() ? 0 : it->second->ejection.ejections;
}

}  // namespace confgate::server
