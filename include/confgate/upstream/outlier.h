// Passive outlier detection: what live traffic says about a host (reported by workers through
// atomics on the Host), and the ejection decisions the main thread takes from it.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/time/time.h"
#include "confgate/common/time_source.h"
#include "confgate/config/config.h"

namespace confgate::upstream {

// What one attempt says about the host that served it.
enum class Outcome {
  kSuccess,         // a response below 500
  kServerError,     // a 5xx other than 502/503/504
  kGatewayFailure,  // connect failure, reset, timeout, malformed response, 502/503/504
  kNeutral,         // tells nothing: the client went away, a watch's hold ran out
};

// The ejection history of one host, on the main thread.
struct EjectionRecord {
  uint32_t ejections = 0;  // n: the next ejection is the (n+1)-th
  bool ejected = false;
  MonotonicTime readmitted_at = MonotonicTime::min();  // when n last stopped growing
};

// The pool around the host being considered, for the ejection caps.
struct PoolCounts {
  size_t total = 0;      // hosts in the pool (primaries and backups)
  size_t available = 0;  // currently available
  size_t ejected = 0;    // currently ejected by outlier detection
};

class Host;

// Where workers report the outcome of each attempt. Called on worker threads: implementations
// only touch atomics and post to the main thread.
class OutcomeReporter {
 public:
  virtual ~OutcomeReporter() = default;
  virtual void Report(Host& host, Outcome outcome) = 0;
};

class OutlierPolicy {
 public:
  explicit OutlierPolicy(const config::OutlierDetectionConfig& config) : config_(config) {}

  // n decays by one for every base_ejection_time the host stayed admitted since readmission.
  void Decay(EjectionRecord& record, MonotonicTime now) const;
  // Whether ejecting one more host keeps the pool within max_ejection_percent (checked before
  // ejecting, on the count after) and at or above min_available_hosts.
  bool MayEject(const PoolCounts& pool) const;
  // The length of ejection number `n` (1-based): min(n * base, max) spread by ±10%;
  // `unit` is uniform in [0, 1).
  absl::Duration EjectionTime(uint32_t n, double unit) const;
  // Ejects the host (after Decay): returns how long the cooldown lasts.
  absl::Duration Eject(EjectionRecord& record, MonotonicTime now, double unit) const;
  void Readmit(EjectionRecord& record, MonotonicTime now) const;

  const config::OutlierDetectionConfig& config() const { return config_; }

 private:
  config::OutlierDetectionConfig config_;
};

}  // namespace confgate::upstream
