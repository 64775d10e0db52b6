// Per-upstream modes (design.md "Host state and modes").
#pragma once

#include <optional>

namespace confgate::mode {

enum class UpstreamMode { kNormal = 0, kFailover = 1, kReadOnly = 2 };

const char* UpstreamModeName(UpstreamMode mode);

// normal while a primary is available, failover while only backups are, read_only when no
// host is. An operator override of true forces read_only; false keeps the upstream out of
// read_only (requests are tried and fail upstream instead); nullopt leaves it automatic.
UpstreamMode ComputeMode(bool primary_available, bool backup_available,
                         std::optional<bool> read_only_override);

}  // namespace confgate::mode
