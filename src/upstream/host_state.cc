#include "confgate/upstream/host_state.h"

#include <algorithm>

#include "confgate/config/config.h"

namespace confgate::upstream {
namespace {

// Ids start at 1 and only grow: 0 never names a host.
std::atomic<HostId> next_host_id{1};

}  // namespace

HostState::HostState() : id_(next_host_id.fetch_add(1, std::memory_order_relaxed)) {}

bool HostState::RecordOutcome(Outcome outcome) {
  config::OutlierDetectionConfig thresholds;
  thresholds.consecutive_5xx = threshold_5xx_.load(std::memory_order_relaxed);
  thresholds.consecutive_gateway_failures = threshold_gateway_.load(std::memory_order_relaxed);
  return RecordOutcome(outcome, thresholds);
}

void HostState::SetAvailable(bool available, MonotonicTime now) {
  uint8_t was =
      available ? flags_.fetch_or(kAvailable, std::memory_order_relaxed)
                : flags_.fetch_and(static_cast<uint8_t>(~kAvailable), std::memory_order_relaxed);
  if (available && (was & kAvailable) == 0) {
    available_since_ns_.store(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count(),
        std::memory_order_relaxed);
  }
}

bool HostState::RecordOutcome(Outcome outcome, const config::OutlierDetectionConfig& outlier) {
  switch (outcome) {
    case Outcome::kSuccess:
      consecutive_5xx_.store(0, std::memory_order_relaxed);
      consecutive_gateway_failures_.store(0, std::memory_order_relaxed);
      return false;
    case Outcome::kServerError:
      consecutive_gateway_failures_.store(0, std::memory_order_relaxed);
      return consecutive_5xx_.fetch_add(1, std::memory_order_relaxed) + 1 >=
             outlier.consecutive_5xx;
    case Outcome::kGatewayFailure: {
      // Gateway failures are 5xx too (502/503/504 or their local equivalents).
      uint32_t errors = consecutive_5xx_.fetch_add(1, std::memory_order_relaxed) + 1;
      uint32_t gateway = consecutive_gateway_failures_.fetch_add(1, std::memory_order_relaxed) + 1;
      return errors >= outlier.consecutive_5xx || gateway >= outlier.consecutive_gateway_failures;
    }
    case Outcome::kNeutral:
      return false;
  }
  return false;
}

void HostState::ResetFailureCounts() {
  consecutive_5xx_.store(0, std::memory_order_relaxed);
  consecutive_gateway_failures_.store(0, std::memory_order_relaxed);
}

void HostState::OpenTrial() {
  uint8_t flags = flags_.load(std::memory_order_relaxed);
  uint8_t open;
  do {
    open = static_cast<uint8_t>((flags & ~kTrialInFlight) | kTrialOpen | kAvailable);
  } while (!flags_.compare_exchange_weak(flags, open, std::memory_order_release,
                                         std::memory_order_relaxed));
}

const char* FailureReasonName(FailureReason reason) {
  switch (reason) {
    case FailureReason::kNone:
      return "none";
    case FailureReason::kConnect:
      return "connect_failure";
    case FailureReason::kReset:
      return "reset";
    case FailureReason::kTimeout:
      return "timeout";
    case FailureReason::kMalformed:
      return "malformed_response";
    case FailureReason::kStatus:
      return "status";
  }
  return "none";
}

uint64_t HostState::requests() const {
  uint64_t total = 0;
  for (const std::atomic<uint64_t>& count : outcomes_) {
    total += count.load(std::memory_order_relaxed);
  }
  return total;
}

uint64_t HostState::failures() const {
  return outcomes_[static_cast<size_t>(Outcome::kServerError)].load(std::memory_order_relaxed) +
         outcomes_[static_cast<size_t>(Outcome::kGatewayFailure)].load(std::memory_order_relaxed);
}

void HostState::RecordFailure(FailureReason reason, int status, absl::Time when) {
  uint64_t millis = static_cast<uint64_t>(std::max<int64_t>(absl::ToUnixMillis(when), 0));
  uint64_t code = status > 0 && status < 4096 ? static_cast<uint64_t>(status) : 0;
  last_failure_.store(millis << 16 | static_cast<uint64_t>(reason) << 12 | code,
                      std::memory_order_relaxed);
}

HostState::LastFailure HostState::last_failure() const {
  uint64_t word = last_failure_.load(std::memory_order_relaxed);
  LastFailure failure;
  if (word == 0) {
    return failure;
  }
  failure.reason = static_cast<FailureReason>((word >> 12) & 0xf);
  failure.status = static_cast<int>(word & 0xfff);
  failure.when = absl::FromUnixMillis(static_cast<int64_t>(word >> 16));
  return failure;
}

bool HostState::ClaimTrial() {
  uint8_t flags = flags_.load(std::memory_order_acquire);
  uint8_t claimed;
  do {
    if ((flags & kTrialOpen) == 0) {
      return false;
    }
    claimed = static_cast<uint8_t>((flags & ~(kTrialOpen | kAvailable)) | kTrialInFlight);
  } while (!flags_.compare_exchange_weak(flags, claimed));
  return true;
}

}  // namespace confgate::upstream
