// Reading the operator's files (the upstream file, the admin token file) without trusting what
// the path names: only a regular file, read with a bound.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace confgate {

// The whole content of the regular file at `path` (symbolic links are followed), at most
// `max_bytes` long. Anything else fails at once and never blocks: a FIFO (/dev/stdin of a
// pipe), a device (/dev/zero), a directory or socket, a file over the limit, or one that grows
// past it while it is read. Messages name the path and, for a file too large, the limit.
absl::StatusOr<std::string> ReadRegularFile(const std::string& path, uint64_t max_bytes);

// "8 MiB", "64 KiB" or "100 bytes": a limit as an operator would write it.
std::string FormatByteLimit(uint64_t bytes);

// For messages that echo an operator's or a peer's value: the text in double quotes, cut at
// `max_bytes` (at a UTF-8 character boundary) with "..." and the full length after it, so a
// 50 MiB value never becomes a 50 MiB log line.
std::string QuoteShortened(absl::string_view text, size_t max_bytes = 100);
// The same cut, without quotes (for keys that become part of a field path).
std::string Shortened(absl::string_view text, size_t max_bytes = 100);

}  // namespace confgate
