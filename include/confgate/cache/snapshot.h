// The cache on disk, so a confgate restarted during a full outage still serves the last good
// config: written atomically (one temp file per snapshot path, fsync, rename) with a version
// and a checksum; a truncated, corrupt or foreign file is rejected whole, never half-loaded.
// The file is untrusted input all the same: each entry is checked again like an upstream
// response, and an invalid one is dropped while the rest load.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "confgate/cache/store.h"

namespace confgate::cache {

struct DecodedSnapshot {
  std::vector<CacheItem> items;      // the valid entries, in file order, all `from_snapshot`
  std::vector<std::string> dropped;  // why each invalid entry was dropped, in file order
};

std::string EncodeSnapshot(const std::vector<CacheItem>& items);
absl::StatusOr<DecodedSnapshot> DecodeSnapshot(absl::string_view data);

// Why a decoded entry may not be served; nullopt when it may.
std::optional<std::string> WhySnapshotEntryInvalid(const CacheItem& item);

// The one temp file a write to `path` uses: `<path>.tmp`.
std::string SnapshotTempPath(const std::string& path);
absl::Status WriteSnapshotFile(const std::string& path, const std::vector<CacheItem>& items);
// The file must be a regular file of at most `max_bytes`; kNotFound when there is none.
absl::StatusOr<DecodedSnapshot> ReadSnapshotFile(const std::string& path, uint64_t max_bytes);
// The largest snapshot file read for a cache of `cache_max_bytes`: its entries and their keys
// and fields, with room to spare.
inline uint64_t MaxSnapshotFileBytes(uint64_t cache_max_bytes) {
  return 2 * cache_max_bytes + 16 * 1024 * 1024;
}
// Removes what a writer killed mid-write left next to `path` (its temp file, and the
// `<path>.tmp.<pid>` files of earlier versions); for start-up, before any write. Returns how
// many files were removed.
int RemoveStaleSnapshotTemps(const std::string& path);

}  // namespace confgate::cache
