#include <algorithm>

#include "confgate/upstream/health_scheduler.h"
#include "upstream/health/probe.h"

namespace confgate::upstream {

HealthCheckScheduler::ProbeFactory HealthCheckScheduler::RealProbes(event::Dispatcher& dispatcher) {
  return [&dispatcher](Host& host, const config::HealthCheckConfig& check,
                       std::shared_ptr<const network::ClientTls> tls, ProbeDone done) {
    return std::make_unique<HealthProbe>(dispatcher, host, check, std::move(tls), std::move(done));
  };
}

HealthCheckScheduler::HealthCheckScheduler(event::Dispatcher& dispatcher, TimerFactory timers,
                                           ProbeFactory probes, std::function<double()> unit,
                                           ResultCallback on_result)
    : dispatcher_(dispatcher),
      timers_(std::move(timers)),
      probes_(std::move(probes)),
      unit_(std::move(unit)),
      on_result_(std::move(on_result)) {}

HealthCheckScheduler::~HealthCheckScheduler() = default;

void HealthCheckScheduler::SetTargets(std::vector<Target> targets) {
  std::unordered_map<HostId, std::unique_ptr<Entry>> previous = std::move(entries_);
  entries_.clear();
  order_.clear();
  for (Target& target : targets) {
    std::unique_ptr<Entry> entry;
    if (auto kept = previous.find(target.host->id()); kept != previous.end()) {
      entry = std::move(kept->second);
    } else {
      entry = std::make_unique<Entry>();
      Entry* raw = entry.get();
      entry->check_timer = timers_([this, raw] { RunCheck(*raw); });
    }
    entry->host = std::move(target.host);
    entry->tls = std::move(target.tls);
    if (target.check.has_value()) {
      entry->check = *target.check;
      if (entry->tracker == nullptr) {
        entry->tracker = std::make_unique<ActiveHealthTracker>(*target.check);
        entry->first_result_seen = false;
      } else {
        entry->tracker->SetConfig(*target.check);
      }
    } else {
      entry->tracker.reset();
      entry->check_timer->Disable();
    }
    order_.push_back(entry.get());
    HostId id = entry->host->id();
    entries_[id] = std::move(entry);
  }
  // Entries of removed hosts are destroyed with `previous`; their probes and timers go with
  // them. After start-up, new hosts are checked at once.
  if (!started_) {
    return;
  }
  for (Entry* entry : order_) {
    if (entry->tracker != nullptr && !entry->check_timer->enabled() && entry->probe == nullptr) {
      entry->check_timer->Enable(absl::ZeroDuration());
    }
  }
}

void HealthCheckScheduler::Start(std::function<void()> on_warm) {
  started_ = true;
  on_warm_ = std::move(on_warm);
  absl::Duration longest_first_round = absl::ZeroDuration();
  for (Entry* entry : order_) {
    if (entry->tracker == nullptr) {
      continue;
    }
    ++awaiting_first_result_;
    longest_first_round =
        std::max(longest_first_round, entry->check.interval + entry->check.timeout);
    entry->check_timer->Enable(absl::ZeroDuration());
  }
  if (awaiting_first_result_ == 0) {
    MaybeWarm();
    return;
  }
  // A slow checker never blocks start-up: hosts still unknown then count as available.
  warm_timer_ = timers_([this] {
    awaiting_first_result_ = 0;
    MaybeWarm();
  });
  warm_timer_->Enable(longest_first_round);
}

void HealthCheckScheduler::MaybeWarm() {
  if (awaiting_first_result_ == 0 && on_warm_) {
    std::function<void()> on_warm = std::move(on_warm_);
    on_warm_ = nullptr;
    if (warm_timer_ != nullptr) {
      warm_timer_->Disable();
    }
    on_warm();
  }
}

void HealthCheckScheduler::RunCheck(Entry& entry) {
  Entry* raw = &entry;
  entry.probe =
      probes_(*entry.host, entry.check, entry.tls,
              [this, raw](CheckResult result, int status) { OnResult(*raw, result, status); });
}

void HealthCheckScheduler::OnResult(Entry& entry, CheckResult result, int status) {
  // The probe is the caller: destroy it once the callback stack unwinds.
  dispatcher_.DeferredDelete(std::move(entry.probe));
  entry.host->state().health_checks()[static_cast<size_t>(result)].fetch_add(1);
  ActiveHealthTracker::Transition transition = entry.tracker->Record(result == CheckResult::kPass);
  on_result_(*entry.host, result, status, transition);
  if (!entry.first_result_seen) {
    entry.first_result_seen = true;
    if (awaiting_first_result_ > 0) {
      --awaiting_first_result_;
    }
    MaybeWarm();
  }
  entry.check_timer->Enable(entry.tracker->NextDelay(unit_()));
}

std::optional<ActiveState> HealthCheckScheduler::state(HostId id) const {
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second->tracker == nullptr) {
    return std::nullopt;
  }
  return it->second->tracker->state();
}

}  // namespace confgate::upstream
