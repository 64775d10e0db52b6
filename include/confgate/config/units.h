// Durations ("1500ms", "2s", "1m", "24h") and sizes ("512", "64KiB", "8MiB", "1GiB") as the
// upstream file writes them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace confgate::config {

// nullopt and a reason in `error` when the text is not a duration with a unit.
std::optional<absl::Duration> ParseDuration(absl::string_view text, std::string* error);
std::optional<uint64_t> ParseSize(absl::string_view text, std::string* error);
// "10%" -> 0.10; a percentage from 0 to 100.
std::optional<double> ParsePercent(absl::string_view text, std::string* error);

}  // namespace confgate::config
