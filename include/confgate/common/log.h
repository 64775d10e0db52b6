// Process log: one JSON object per line on stderr (errors, warnings, lifecycle events).
// Each line is written with a single write(2), so lines from several threads never interleave.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace confgate {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

using LogField = std::pair<absl::string_view, std::string>;

void Log(LogLevel level, absl::string_view message, std::initializer_list<LogField> fields = {});
// Lines below `level` are not written (the default is kInfo).
void SetMinLogLevel(LogLevel level);
// "debug", "info", "warn" (or "warning") or "error"; nullopt for anything else.
std::optional<LogLevel> ParseLogLevel(absl::string_view name);

// Appends `value` to `out` as a JSON string literal (quotes included), escaping as needed.
void AppendJsonString(absl::string_view value, std::string& out);

}  // namespace confgate
