#include <algorithm>

#include "confgate/upstream/outlier.h"

namespace confgate::upstream {

void OutlierPolicy::Decay(EjectionRecord& record, MonotonicTime now) const {
  if (record.ejected || record.ejections == 0 || record.readmitted_at == MonotonicTime::min() ||
      now <= record.readmitted_at) {
    return;
  }
  absl::Duration remainder;
  int64_t periods = absl::IDivDuration(absl::FromChrono(now - record.readmitted_at),
                                       config_.base_ejection_time, &remainder);
  if (periods <= 0) {
    return;
  }
  uint32_t decay = static_cast<uint32_t>(std::min<int64_t>(periods, record.ejections));
  record.ejections -= decay;
  // Keep the remainder of the current period.
  record.readmitted_at += absl::ToChronoNanoseconds(decay * config_.base_ejection_time);
}

bool OutlierPolicy::MayEject(const PoolCounts& pool) const {
  if (pool.total == 0 || pool.available == 0) {
    return false;
  }
  if (pool.available - 1 < config_.min_available_hosts) {
    return false;
  }
  return (pool.ejected + 1) * 100 <= pool.total * config_.max_ejection_percent;
}

absl::Duration OutlierPolicy::EjectionTime(uint32_t n, double unit) const {
  absl::Duration length =
      std::min(config_.base_ejection_time * static_cast<int64_t>(n), config_.max_ejection_time);
  return length * (1 + 0.1 * (2 * unit - 1));
}

absl::Duration OutlierPolicy::Eject(EjectionRecord& record, MonotonicTime now, double unit) const {
  Decay(record, now);
  ++record.ejections;
  record.ejected = true;
  return EjectionTime(record.ejections, unit);
}

void OutlierPolicy::Readmit(EjectionRecord& record, MonotonicTime now) const {
  record.ejected = false;
  record.readmitted_at = now;
}

}  // namespace confgate::upstream
