// Counters the data plane bumps with relaxed atomics (handles resolved once, when the objects
// that own them are built); the metrics endpoint reads them at scrape time.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "absl/time/time.h"

namespace confgate::stats {

// Responses by status code (100-599; anything else lands in 0).
class CodeCounters {
 public:
  void Increment(int code) {
    counts_[code >= 100 && code < 600 ? code : 0].fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t count(int code) const { return counts_[code].load(std::memory_order_relaxed); }
  static constexpr int kSize = 600;

 private:
  std::array<std::atomic<uint64_t>, kSize> counts_{};
};

// A latency histogram with buckets that suit a proxy: 100 us to 30 s.
class LatencyHistogram {
 public:
  static constexpr std::array<double, 17> kBounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                     0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                     1,      2.5,     5,      10,    30};

  void Observe(absl::Duration duration) {
    double seconds = absl::ToDoubleSeconds(duration);
    size_t bucket = 0;
    while (bucket < kBounds.size() && seconds > kBounds[bucket]) {
      ++bucket;
    }
    buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(absl::ToInt64Nanoseconds(duration), std::memory_order_relaxed);
  }
  // Observations in bucket i alone (i == kBounds.size() is +Inf).
  uint64_t bucket(size_t i) const { return buckets_[i].load(std::memory_order_relaxed); }
  double sum_seconds() const { return sum_ns_.load(std::memory_order_relaxed) / 1e9; }

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<int64_t> sum_ns_{0};
};

}  // namespace confgate::stats
