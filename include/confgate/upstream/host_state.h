// The live state of an upstream host: availability, ejection and trial flags, failure runs and
// counters. It belongs to the host's identity, (upstream name, address), not to its
// configuration, so a reload that keeps the address hands the same HostState to the new Host
// whatever else changed (weight, backup). Workers update it with relaxed atomics; the control
// plane (main thread) decides availability, ejection and trials.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>

#include "absl/time/time.h"
#include "confgate/common/time_source.h"
#include "confgate/upstream/outlier.h"

namespace confgate::upstream {

// Names one HostState for the life of the process: ids are never reused, so an outcome posted
// for a host that a reload removed can never be taken for a host added later at the same
// address (or allocated at the same memory address).
using HostId = uint64_t;

// Why an attempt on a host failed, as /status reports it.
enum class FailureReason : uint8_t { kNone, kConnect, kReset, kTimeout, kMalformed, kStatus };
const char* FailureReasonName(FailureReason reason);

class HostState {
 public:
  // The last failed attempt on this host: what went wrong and when (the epoch when none did).
  struct LastFailure {
    FailureReason reason = FailureReason::kNone;
    int status = 0;  // the upstream's status, for kStatus
    absl::Time when = absl::UnixEpoch();
  };

  HostState();
  HostState(const HostState&) = delete;
  HostState& operator=(const HostState&) = delete;

  HostId id() const { return id_; }

  // Requests in flight to this host, across workers; watches are also counted on their own,
  // because a parked long-poll is not load.
  std::atomic<uint32_t>& active_requests() { return active_requests_; }
  std::atomic<uint32_t>& active_watches() { return active_watches_; }
  uint32_t load() const {
    uint32_t active = active_requests_.load(std::memory_order_relaxed);
    uint32_t watches = active_watches_.load(std::memory_order_relaxed);
    return active > watches ? active - watches : 0;
  }

  // Whether the balancers may choose this host. Health checks, outlier detection and operator
  // drain decide it; the data plane only reads it.
  bool available() const { return Has(kAvailable); }
  // Records a change of availability; a host that becomes available starts its slow start at
  // `now`.
  void SetAvailable(bool available, MonotonicTime now);
  // When the host last became available; the far past for hosts available from the start.
  MonotonicTime available_since() const {
    return MonotonicTime(
        std::chrono::nanoseconds(available_since_ns_.load(std::memory_order_relaxed)));
  }

  // --- passive health, reported by workers ---
  // Counts an attempt's outcome; true when a consecutive-failure threshold of `outlier` is
  // reached (the main thread then decides on an ejection).
  bool RecordOutcome(Outcome outcome, const config::OutlierDetectionConfig& outlier);
  // RecordOutcome() with the host's own thresholds.
  bool RecordOutcome(Outcome outcome);
  // The thresholds of the host's current outlier_detection (main thread sets them at start
  // and reload); 0 when detection is off.
  void SetOutlierThresholds(uint32_t consecutive_5xx, uint32_t consecutive_gateway_failures) {
    threshold_5xx_.store(consecutive_5xx, std::memory_order_relaxed);
    threshold_gateway_.store(consecutive_gateway_failures, std::memory_order_relaxed);
  }
  bool outlier_detection_enabled() const {
    return threshold_5xx_.load(std::memory_order_relaxed) > 0;
  }
  uint32_t consecutive_5xx() const { return consecutive_5xx_.load(std::memory_order_relaxed); }
  uint32_t consecutive_gateway_failures() const {
    return consecutive_gateway_failures_.load(std::memory_order_relaxed);
  }
  void ResetFailureCounts();

  // --- half-open: after its cooldown an ejected host takes exactly one trial request ---
  // Makes the host choosable for one trial (main thread).
  void OpenTrial();
  bool trial_open() const { return Has(kTrialOpen, std::memory_order_acquire); }
  // A worker that picked a half-open host claims the trial; only one claim succeeds, and the
  // host is unavailable again until the trial's outcome is known.
  bool ClaimTrial();
  // The claimed trial ended; true when it was this host's trial request (main thread).
  bool TakeTrialInFlight() { return (flags_.fetch_and(~kTrialInFlight) & kTrialInFlight) != 0; }
  bool trial_in_flight() const { return Has(kTrialInFlight); }

  // --- state shown to operators (set by the main thread) ---
  bool drained() const { return Has(kDrained); }
  void SetDrained(bool drained) { Set(kDrained, drained); }
  bool ejected() const { return Has(kEjected); }
  void SetEjected(bool ejected) { Set(kEjected, ejected); }

  // --- counters for the metrics endpoint ---
  // Attempts by upstream::Outcome; ejections by EjectionReason; checks by CheckResult.
  std::array<std::atomic<uint64_t>, 4>& outcomes() { return outcomes_; }
  std::array<std::atomic<uint64_t>, 3>& ejections() { return ejections_; }
  std::array<std::atomic<uint64_t>, 5>& health_checks() { return health_checks_; }
  // Attempts that ended (any outcome), and those that failed (a 5xx or a gateway failure).
  uint64_t requests() const;
  uint64_t failures() const;
  // Any worker; one atomic word, so a reader never sees a reason from one failure and the
  // time of another.
  void RecordFailure(FailureReason reason, int status, absl::Time when);
  LastFailure last_failure() const;

 private:
  // One word of flags instead of five atomic<bool>: a trial claim changes three of them in
  // one compare-exchange, and readers see them consistent.
  enum Flag : uint8_t {
    kAvailable = 1 << 0,
    kTrialOpen = 1 << 1,
    kTrialInFlight = 1 << 2,
    kDrained = 1 << 3,
    kEjected = 1 << 4,
  };
  bool Has(uint8_t flag, std::memory_order order = std::memory_order_relaxed) const {
    return (flags_.load(order) & flag) != 0;
  }
  void Set(uint8_t flag, bool on) {
    if (on) {
      flags_.fetch_or(flag);
    } else {
      flags_.fetch_and(static_cast<uint8_t>(~flag));
    }
  }

  // What every pick and every outcome report touches, together at the front.
  std::atomic<uint32_t> active_requests_{0};
  std::atomic<uint32_t> active_watches_{0};
  std::atomic<uint8_t> flags_{kAvailable};
  std::atomic<uint32_t> consecutive_5xx_{0};
  std::atomic<uint32_t> consecutive_gateway_failures_{0};
  std::atomic<uint32_t> threshold_5xx_{0};
  std::atomic<uint32_t> threshold_gateway_{0};
  std::atomic<int64_t> available_since_ns_{std::numeric_limits<int64_t>::min()};
  const HostId id_;
  std::array<std::atomic<uint64_t>, 4> outcomes_{};
  std::array<std::atomic<uint64_t>, 3> ejections_{};
  std::array<std::atomic<uint64_t>, 5> health_checks_{};
  // Unix milliseconds << 16 | reason << 12 | status (below 4096); 0 before any failure.
  std::atomic<uint64_t> last_failure_{0};
};

using HostStateSharedPtr = std::shared_ptr<HostState>;

}  // namespace confgate::upstream
