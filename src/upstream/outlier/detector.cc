#include "absl/strings/str_cat.h"
#include "confgate/common/log.h"
#include "confgate/upstream/outlier_detector.h"

namespace confgate::upstream {

OutlierDetector::OutlierDetector(TimerFactory timers, TimeSource& time,
                                 std::function<double()> unit, Listener& listener)
    : timers_(std::move(timers)), time_(time), unit_(std::move(unit)), listener_(listener) {}

OutlierDetector::~OutlierDetector() = default;

bool OutlierDetector::Observe(HostState& state, Outcome outcome) {
  // Worker thread: only the host's atomics.
  if (!state.outlier_detection_enabled()) {
    return false;
  }
  bool threshold_reached = state.RecordOutcome(outcome);
  return threshold_reached || state.trial_in_flight();
}

void OutlierDetector::SetPools(std::vector<Pool> pools) {
  std::unordered_map<HostId, std::unique_ptr<Entry>> previous = std::move(entries_);
  entries_.clear();
  pools_.clear();
  for (size_t p = 0; p < pools.size(); ++p) {
    Pool& pool = pools[p];
    PoolPolicy policy{pool.name, std::nullopt};
    if (pool.config.has_value()) {
      policy.policy.emplace(*pool.config);
    }
    pools_.push_back(std::move(policy));
    for (HostSharedPtr& host : pool.hosts) {
      host->state().SetOutlierThresholds(
          pool.config.has_value() ? pool.config->consecutive_5xx : 0,
          pool.config.has_value() ? pool.config->consecutive_gateway_failures : 0);
      std::unique_ptr<Entry> entry;
      if (auto kept = previous.find(host->id()); kept != previous.end()) {
        entry = std::move(kept->second);
      } else {
        entry = std::make_unique<Entry>();
        Entry* raw = entry.get();
        entry->cooldown_timer = timers_([this, raw] { OnCooldownOver(*raw); });
      }
      entry->pool = p;
      entry->host = std::move(host);
      HostId id = entry->host->id();
      entries_[id] = std::move(entry);
    }
  }
  // Entries of removed hosts go here, with their cooldown timers.
}

void OutlierDetector::OnOutcome(HostId id, Outcome outcome) {
  auto it = entries_.find(id);
  if (it == entries_.end() || !pools_[it->second->pool].policy.has_value()) {
    return;  // removed by a reload since the report, or detection is off now
  }
  Entry& entry = *it->second;
  HostState& state = entry.host->state();
  const OutlierPolicy& policy = *pools_[entry.pool].policy;
  if (entry.trial && state.TakeTrialInFlight()) {
    switch (outcome) {
      case Outcome::kSuccess:
        Readmit(entry, "trial request succeeded");
        return;
      case Outcome::kServerError:
      case Outcome::kGatewayFailure:
        Eject(entry, EjectionReason::kTrialFailed);
        return;
      case Outcome::kNeutral:
        state.OpenTrial();  // the trial told nothing; the next request is the trial
        return;
    }
  }
  if (entry.record.ejected) {
    return;
  }
  EjectionReason reason;
  if (state.consecutive_gateway_failures() >= policy.config().consecutive_gateway_failures) {
    reason = EjectionReason::kConsecutiveGatewayFailures;
  } else if (state.consecutive_5xx() >= policy.config().consecutive_5xx) {
    reason = EjectionReason::kConsecutive5xx;
  } else {
    return;  // a success came in between
  }
  if (!policy.MayEject(Counts(entry.pool))) {
    Log(LogLevel::kWarn, "outlier not ejected: the pool is at its ejection limit",
        {{"upstream", pools_[entry.pool].name},
         {"host", entry.host->address()},
         {"reason", EjectionReasonName(reason)}});
    state.ResetFailureCounts();
    return;
  }
  Eject(entry, reason);
}

void OutlierDetector::OnHealthPass(HostId id) {
  auto it = entries_.find(id);
  if (it != entries_.end() && it->second->trial) {
    Readmit(*it->second, "health check passed after cooldown");
  }
}

void OutlierDetector::Eject(Entry& entry, EjectionReason why) {
  HostState& state = entry.host->state();
  state.ejections()[static_cast<size_t>(why)].fetch_add(1);
  absl::Duration cooldown =
      pools_[entry.pool].policy->Eject(entry.record, time_.Monotonic(), unit_());
  entry.trial = false;
  state.SetEjected(true);
  state.ResetFailureCounts();
  entry.cooldown_timer->Enable(cooldown);
  listener_.PublishAvailability(*entry.host);
  Log(LogLevel::kWarn, "host ejected",
      {{"upstream", pools_[entry.pool].name},
       {"host", entry.host->address()},
       {"reason", EjectionReasonName(why)},
       {"ejection", absl::StrCat(entry.record.ejections)},
       {"cooldown_ms", absl::StrCat(absl::ToInt64Milliseconds(cooldown))}});
  listener_.OnEjectionChanged(*entry.host);
}

void OutlierDetector::OnCooldownOver(Entry& entry) {
  if (listener_.HealthDown(*entry.host) || entry.host->state().drained()) {
    // No trial for a host that is down or drained anyway: active checks (or enable) bring it
    // back; outlier detection lets go of it.
    Readmit(entry, "cooldown over");
    return;
  }
  entry.trial = true;
  entry.host->state().OpenTrial();
  Log(LogLevel::kInfo, "host half-open: one trial request",
      {{"upstream", pools_[entry.pool].name}, {"host", entry.host->address()}});
  listener_.OnEjectionChanged(*entry.host);
}

void OutlierDetector::Readmit(Entry& entry, const char* reason) {
  std::optional<OutlierPolicy>& policy = pools_[entry.pool].policy;
  if (policy.has_value()) {
    policy->Readmit(entry.record, time_.Monotonic());
  } else {
    entry.record.ejected = false;  // a reload turned outlier detection off
  }
  entry.trial = false;
  entry.cooldown_timer->Disable();
  HostState& state = entry.host->state();
  state.SetEjected(false);
  state.ResetFailureCounts();
  // Through unavailable, so the re-admission starts the host's slow start.
  state.SetAvailable(false, time_.Monotonic());
  listener_.PublishAvailability(*entry.host);
  Log(LogLevel::kInfo, "host re-admitted",
      {{"upstream", pools_[entry.pool].name}, {"host", entry.host->address()}, {"reason", reason}});
  listener_.OnEjectionChanged(*entry.host);
}

PoolCounts OutlierDetector::Counts(size_t pool) const {
  PoolCounts counts;
  for (const auto& [id, entry] : entries_) {
    if (entry->pool != pool) {
      continue;
    }
    ++counts.total;
    counts.available += entry->host->state().available() ? 1 : 0;
    counts.ejected += entry->record.ejected ? 1 : 0;
  }
  return counts;
}

const OutlierDetector::Entry* OutlierDetector::Find(HostId id) const {
  auto it = entries_.find(id);
  return it == entries_.end() ? nullptr : it->second.get();
}

bool OutlierDetector::ejected(HostId id) const {
  const Entry* entry = Find(id);
  return entry != nullptr && entry->record.ejected;
}

bool OutlierDetector::in_trial(HostId id) const {
  const Entry* entry = Find(id);
  return entry != nullptr && entry->trial;
}

uint32_t OutlierDetector::ejection_count(HostId id) const {
  const Entry* entry = Find(id);
  return entry == nullptr ? 0 : entry->record.ejections;
}

}  // namespace confgate::upstream
