// The cache on disk, so a confgate restarted during a full outage still serves the last good
// config: written atomically (temp file, fsync, rename) with a version and a checksum; a
// truncated, corrupt or foreign file is rejected whole, never half-loaded.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "confgate/cache/store.h"

namespace confgate::cache {

std::string EncodeSnapshot(const std::vector<CacheItem>& items);
absl::StatusOr<std::vector<CacheItem>> DecodeSnapshot(absl::string_view data);

absl::Status WriteSnapshotFile(const std::string& path, const std::vector<CacheItem>& items);
absl::StatusOr<std::vector<CacheItem>> ReadSnapshotFile(const std::string& path);

}  // namespace confgate::cache
