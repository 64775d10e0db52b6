#include "confgate/common/log.h"

#include <unistd.h>

#include <atomic>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace confgate {
namespace {

std::atomic<LogLevel> min_level{LogLevel::kInfo};

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

}  // namespace

void SetMinLogLevel(LogLevel level) { min_level.store(level, std::memory_order_relaxed); }

std::optional<LogLevel> ParseLogLevel(absl::string_view name) {
  for (LogLevel level : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    if (name == LevelName(level)) {
      return level;
    }
  }
  if (name == "warning") {
    return LogLevel::kWarn;
  }
  return std::nullopt;
}

void AppendJsonString(absl::string_view value, std::string& out) {
  out.push_back('"');
  for (unsigned char c : value) {
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          absl::StrAppendFormat(&out, "\\u%04x", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

void Log(LogLevel level, absl::string_view message, std::initializer_list<LogField> fields) {
  if (level < min_level.load(std::memory_order_relaxed)) {
    return;
  }
  std::string line = "{\"ts\":";
  AppendJsonString(absl::FormatTime(absl::RFC3339_full, absl::Now(), absl::UTCTimeZone()), line);
  line.append(",\"level\":");
  AppendJsonString(LevelName(level), line);
  line.append(",\"msg\":");
  AppendJsonString(message, line);
  for (const auto& [key, value] : fields) {
    line.push_back(',');
    AppendJsonString(key, line);
    line.push_back(':');
    AppendJsonString(value, line);
  }
  line.append("}\n");
  // Best effort: a full stderr pipe must not take the proxy down.
  size_t written = 0;
  while (written < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + written, line.size() - written);
    if (n <= 0) {
      break;
    }
    written += static_cast<size_t>(n);
  }
}

}  // namespace confgate
