// Passive outlier detection on the main thread: ejections with growing cooldowns, the
// half-open trial after a cooldown, and re-admission. Workers only bump a host's atomics
// (Observe); the decision comes here by HostId, so a late report for a host that a reload
// removed finds nothing.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "confgate/common/time_source.h"
#include "confgate/config/config.h"
#include "confgate/upstream/host.h"
#include "confgate/upstream/outlier.h"
#include "confgate/upstream/timer_factory.h"

namespace confgate::upstream {

class OutlierDetector {
 public:
  // What the detector needs from the rest of the control plane.
  class Listener {
   public:
    virtual ~Listener() = default;
    // Store the host's availability where workers read it (before the change is logged).
    virtual void PublishAvailability(const Host& host) = 0;
    // The host's ejection state changed and was logged: availability and mode follow.
    virtual void OnEjectionChanged(const Host& host) = 0;
    // Whether active checks have the host down: its cooldown then ends without a trial.
    virtual bool HealthDown(const Host& host) = 0;
  };

  // One upstream's hosts and its outlier_detection (nullopt: off).
  struct Pool {
    std::string name;
    std::optional<config::OutlierDetectionConfig> config;
    std::vector<HostSharedPtr> hosts;
  };

  // `unit` draws uniformly from [0, 1) for the cooldown jitter.
  OutlierDetector(TimerFactory timers, TimeSource& time, std::function<double()> unit,
                  Listener& listener);
  ~OutlierDetector();

  // Worker thread: counts `outcome` on the host's atomics; true when the main thread must look
  // at it (a failure threshold was reached, or it ends the host's trial).
  static bool Observe(HostState& state, Outcome outcome);

  // The hosts of a (re)loaded snapshot. A host whose HostId was known keeps its ejection
  // history, its cooldown and its trial; the others start clean; removed ones are forgotten.
  void SetPools(std::vector<Pool> pools);
  // Main thread: an outcome that Observe() flagged.
  void OnOutcome(HostId id, Outcome outcome);
  // Active checks passed: a host waiting for its trial is re-admitted at once.
  void OnHealthPass(HostId id);

  bool ejected(HostId id) const;
  // In its half-open trial: its availability is the trial's, not the checks'.
  bool in_trial(HostId id) const;
  // n: how many ejections the host's history counts (it decays while the host behaves).
  uint32_t ejection_count(HostId id) const;

 private:
  struct Entry {
    size_t pool = 0;
    HostSharedPtr host;
    EjectionRecord record;
    event::TimerPtr cooldown_timer;
    bool trial = false;  // cooldown over, waiting for the trial's outcome
  };
  struct PoolPolicy {
    std::string name;
    std::optional<OutlierPolicy> policy;
  };

  void Eject(Entry& entry, EjectionReason why);
  void OnCooldownOver(Entry& entry);
  void Readmit(Entry& entry, const char* reason);
  PoolCounts Counts(size_t pool) const;
  const Entry* Find(HostId id) const;

  TimerFactory timers_;
  TimeSource& time_;
  std::function<double()> unit_;
  Listener& listener_;
  std::vector<PoolPolicy> pools_;
  std::unordered_map<HostId, std::unique_ptr<Entry>> entries_;
};

}  // namespace confgate::upstream
