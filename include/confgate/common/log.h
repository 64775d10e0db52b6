// Process log: one JSON object per line on stderr (errors, warnings, lifecycle events).
// Each line is written with a single write(2), so lines from several threads never interleave.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace confgate {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

using LogField = std::pair<absl::string_view, std::string>;

void Log(LogLevel level, absl::string_view message, std::initializer_list<LogField> fields = {});
void SetMinLogLevel(LogLevel level);

// Appends `value` to `out` as a JSON string literal (quotes included), escaping as needed.
void AppendJsonString(absl::string_view value, std::string& out);

}  // namespace confgate
