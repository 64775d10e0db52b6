#include "server/control_plane.h"

#include "absl/strings/str_cat.h"
#include "confgate/common/log.h"

namespace confgate::server {

ControlPlane::ControlPlane(event::Dispatcher& dispatcher, TimeSource& time,
                           RuntimeSnapshotPtr snapshot)
    : ControlPlane(dispatcher, time, std::move(snapshot), upstream::DispatcherTimers(dispatcher),
                   upstream::HealthCheckScheduler::RealProbes(dispatcher)) {}

ControlPlane::ControlPlane(event::Dispatcher& dispatcher, TimeSource& time,
                           RuntimeSnapshotPtr snapshot, upstream::TimerFactory timers,
                           upstream::HealthCheckScheduler::ProbeFactory probes)
    : dispatcher_(dispatcher),
      time_(time),
      timers_(std::move(timers)),
      random_(static_cast<uint64_t>(absl::ToUnixNanos(time.SystemTime()))),
      health_(
          dispatcher, timers_, std::move(probes), [this] { return Unit(); },
          [this](const upstream::Host& host, upstream::CheckResult result, int status,
                 upstream::ActiveHealthTracker::Transition transition) {
            OnCheckResult(host, result, status, transition);
          }),
      outlier_(
          timers_, time, [this] { return Unit(); }, *this) {
  AdoptSnapshot(std::move(snapshot));
}

ControlPlane::~ControlPlane() = default;

double ControlPlane::Unit() { return (random_.Next() >> 11) * 0x1.0p-53; }

void ControlPlane::AdoptSnapshot(RuntimeSnapshotPtr snapshot) {
  snapshot_ = std::move(snapshot);
  std::vector<std::unique_ptr<mode::UpstreamModeTracker>> previous = std::move(modes_);
  modes_.clear();
  cluster_of_.clear();
  std::vector<upstream::HealthCheckScheduler::Target> targets;
  std::vector<upstream::OutlierDetector::Pool> pools;
  for (size_t c = 0; c < snapshot_->clusters.size(); ++c) {
    const upstream::ClusterSharedPtr& cluster = snapshot_->clusters[c];
    const config::UpstreamConfig& config = cluster->config();
    std::unique_ptr<mode::UpstreamModeTracker> tracker;
    for (std::unique_ptr<mode::UpstreamModeTracker>& old : previous) {
      if (old != nullptr && old->cluster()->name() == cluster->name()) {
        tracker = std::move(old);  // keeps its override and its controller's history
        break;
      }
    }
    if (tracker == nullptr) {
      tracker = std::make_unique<mode::UpstreamModeTracker>(timers_, time_);
    }
    tracker->SetCluster(cluster);
    modes_.push_back(std::move(tracker));
    pools.push_back({cluster->name(), config.outlier_detection, cluster->hosts()});
    for (const upstream::HostSharedPtr& host : cluster->hosts()) {
      cluster_of_[host->id()] = c;
      targets.push_back({host, config.health_check, snapshot_->cluster_tls[c]});
    }
  }
  outlier_.SetPools(std::move(pools));
  health_.SetTargets(std::move(targets));
}

void ControlPlane::Reload(RuntimeSnapshotPtr snapshot) {
  AdoptSnapshot(std::move(snapshot));
  for (const std::unique_ptr<mode::UpstreamModeTracker>& tracker : modes_) {
    tracker->Publish();
    tracker->Update("configuration reloaded");
  }
}

void ControlPlane::Start(std::function<void()> on_warm) {
  // An upstream whose names do not resolve yet has no host at all: read-only from the start.
  for (const std::unique_ptr<mode::UpstreamModeTracker>& tracker : modes_) {
    if (tracker->cluster()->hosts().empty()) {
      tracker->Update("no host: its names do not resolve yet");
    }
  }
  health_.Start(std::move(on_warm));
}

void ControlPlane::OnCheckResult(const upstream::Host& host, upstream::CheckResult result,
                                 int status, upstream::ActiveHealthTracker::Transition transition) {
  const std::string& upstream = host.upstream();
  bool pass = result == upstream::CheckResult::kPass;
  if (transition == upstream::ActiveHealthTracker::Transition::kBecameUnhealthy) {
    Publish(host);
    Log(LogLevel::kWarn, "host marked down by health checks",
        {{"upstream", upstream},
         {"host", host.address()},
         {"result", upstream::CheckResultName(result)},
         {"status", absl::StrCat(status)}});
    UpdateAvailability(host);
  } else if (transition == upstream::ActiveHealthTracker::Transition::kBecameHealthy) {
    Publish(host);
    Log(LogLevel::kInfo, "host marked up by health checks",
        {{"upstream", upstream}, {"host", host.address()}});
    UpdateAvailability(host);
  } else if (!pass) {
    Log(LogLevel::kDebug, "health check failed",
        {{"upstream", upstream},
         {"host", host.address()},
         {"result", upstream::CheckResultName(result)}});
  }
  if (pass) {
    outlier_.OnHealthPass(host.id());
  }
}

void ControlPlane::Report(upstream::Host& host, upstream::Outcome outcome) {
  // Worker thread: only the host's atomics and a post, by id (never by pointer: the host may
  // be gone, and another allocated where it was, when the post runs).
  if (upstream::OutlierDetector::Observe(host.state(), outcome)) {
    upstream::HostId id = host.id();
    dispatcher_.Post([this, id, outcome] { outlier_.OnOutcome(id, outcome); });
  }
}

bool ControlPlane::HealthDown(const upstream::Host& host) {
  return health_.state(host.id()) == upstream::ActiveState::kUnhealthy;
}

bool ControlPlane::Publish(const upstream::Host& host) {
  upstream::HostState& state = host.state();
  if (outlier_.in_trial(host.id())) {
    return state.available();  // the trial's outcome decides
  }
  bool available = !HealthDown(host) && !outlier_.ejected(host.id()) && !state.drained();
  state.SetAvailable(available, time_.Monotonic());
  return available;
}

void ControlPlane::UpdateAvailability(const upstream::Host& host) {
  auto cluster = cluster_of_.find(host.id());
  if (cluster == cluster_of_.end()) {
    return;
  }
  mode::UpstreamModeTracker& tracker = *modes_[cluster->second];
  if (outlier_.in_trial(host.id())) {
    tracker.Update("host half-open");
    return;
  }
  bool available = Publish(host);
  tracker.Update(absl::StrCat("host ", host.address(), available ? " available" : " unavailable"));
}

const upstream::Host* ControlPlane::Find(const std::string& upstream,
                                         const std::string& address) const {
  for (const upstream::ClusterSharedPtr& cluster : snapshot_->clusters) {
    if (cluster->name() != upstream) {
      continue;
    }
    for (const upstream::HostSharedPtr& host : cluster->hosts()) {
      if (host->address() == address) {
        return host.get();
      }
    }
  }
  return nullptr;
}

absl::Status ControlPlane::DrainHost(const std::string& upstream, const std::string& address) {
  const upstream::Host* host = Find(upstream, address);
  if (host == nullptr) {
    return absl::NotFoundError(absl::StrCat("no host ", address, " in upstream ", upstream));
  }
  host->state().SetDrained(true);
  Log(LogLevel::kWarn, "host drained by operator", {{"upstream", upstream}, {"host", address}});
  UpdateAvailability(*host);
  return absl::OkStatus();
}

absl::Status ControlPlane::EnableHost(const std::string& upstream, const std::string& address) {
  const upstream::Host* host = Find(upstream, address);
  if (host == nullptr) {
    return absl::NotFoundError(absl::StrCat("no host ", address, " in upstream ", upstream));
  }
  host->state().SetDrained(false);
  Log(LogLevel::kInfo, "host enabled by operator", {{"upstream", upstream}, {"host", address}});
  UpdateAvailability(*host);
  return absl::OkStatus();
}

absl::Status ControlPlane::SetReadOnlyOverride(const std::string& upstream,
                                               std::optional<bool> read_only) {
  for (const std::unique_ptr<mode::UpstreamModeTracker>& tracker : modes_) {
    if (tracker->cluster()->name() == upstream) {
      tracker->SetOverride(read_only);
      return absl::OkStatus();
    }
  }
  return absl::NotFoundError(absl::StrCat("no upstream ", upstream));
}

const char* ControlPlane::health(const upstream::Host& host) const {
  std::optional<upstream::ActiveState> state = health_.state(host.id());
  return state.has_value() ? upstream::ActiveStateName(*state) : "unchecked";
}

}  // namespace confgate::server
