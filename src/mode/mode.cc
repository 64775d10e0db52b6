#include "confgate/mode/mode.h"

namespace confgate::mode {

const char* UpstreamModeName(UpstreamMode mode) {
  switch (mode) {
    case UpstreamMode::kNormal:
      return "normal";
    case UpstreamMode::kFailover:
      return "failover";
    case UpstreamMode::kReadOnly:
      return "read_only";
  }
  return "normal";
}

UpstreamMode ComputeMode(bool primary_available, bool backup_available,
                         std::optional<bool> read_only_override) {
  if (read_only_override == true) {
    return UpstreamMode::kReadOnly;
  }
  if (primary_available) {
    return UpstreamMode::kNormal;
  }
  if (backup_available) {
    return UpstreamMode::kFailover;
  }
  return read_only_override == false ? UpstreamMode::kNormal : UpstreamMode::kReadOnly;
}

UpstreamMode ModeController::Update(const HostAvailability& hosts,
                                    std::optional<bool> read_only_override, MonotonicTime now) {
  recheck_in_.reset();
  UpstreamMode computed = ComputeMode(hosts.primary, hosts.backup, read_only_override);
  bool none_available = !hosts.primary && !hosts.backup;
  if (!none_available) {
    none_available_since_.reset();
  } else if (!none_available_since_.has_value()) {
    none_available_since_ = now;
  }
  if (computed != UpstreamMode::kReadOnly || read_only_override == true || !hosts.undrained) {
    mode_ = computed;
    return mode_;
  }
  absl::Duration down_for = absl::FromChrono(now - *none_available_since_);
  if (down_for >= read_only_after_) {
    mode_ = UpstreamMode::kReadOnly;
    return mode_;
  }
  // Still within the dwell: keep serving through the hosts. A read-only left from an override
  // that was just cleared becomes normal (the balancer routes to every host meanwhile).
  if (mode_ == UpstreamMode::kReadOnly) {
    mode_ = UpstreamMode::kNormal;
  }
  recheck_in_ = read_only_after_ - down_for;
  return mode_;
}

}  // namespace confgate::mode
