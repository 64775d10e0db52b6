// The only way confgate code reads the clock, so tests can drive time.
#pragma once

#include <chrono>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace confgate {

using MonotonicTime = std::chrono::steady_clock::time_point;

class TimeSource {
 public:
  virtual ~TimeSource() = default;
  // Wall-clock time, for logs and HTTP dates.
  virtual absl::Time SystemTime() = 0;
  // For durations and deadlines.
  virtual MonotonicTime Monotonic() = 0;
};

class RealTimeSource final : public TimeSource {
 public:
  // confgate::TimeSource
  absl::Time SystemTime() override { return absl::Now(); }
  MonotonicTime Monotonic() override { return std::chrono::steady_clock::now(); }
};

// A clock that moves only when a test says so.
class SimulatedTimeSource final : public TimeSource {
 public:
  // confgate::TimeSource
  absl::Time SystemTime() override { return system_; }
  MonotonicTime Monotonic() override { return monotonic_; }

  void Advance(absl::Duration d) {
    system_ += d;
    monotonic_ += absl::ToChronoNanoseconds(d);
  }

 private:
  absl::Time system_ = absl::FromUnixSeconds(1'700'000'000);
  MonotonicTime monotonic_{};
};

}  // namespace confgate
