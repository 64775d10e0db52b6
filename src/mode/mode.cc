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

}  // namespace confgate::mode
