#include "confgate/config/units.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "confgate/common/file.h"

namespace confgate::config {
namespace {

// Splits "12.5ms" into 12.5 and "ms". False when there is no leading number.
bool SplitNumber(absl::string_view text, double* number, absl::string_view* unit) {
  size_t end = 0;
  while (end < text.size() &&
         (absl::ascii_isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.')) {
    ++end;
  }
  if (end == 0) {
    return false;
  }
  *unit = text.substr(end);
  return absl::SimpleAtod(text.substr(0, end), number) && std::isfinite(*number);
}

}  // namespace

std::optional<absl::Duration> ParseDuration(absl::string_view text, std::string* error) {
  double number = 0;
  absl::string_view unit;
  if (!SplitNumber(text, &number, &unit)) {
    *error = absl::StrCat(QuoteShortened(text), " is not a duration (e.g. 500ms, 2s, 1m, 24h)");
    return std::nullopt;
  }
  absl::Duration scale;
  if (unit == "ms") {
    scale = absl::Milliseconds(1);
  } else if (unit == "s") {
    scale = absl::Seconds(1);
  } else if (unit == "m") {
    scale = absl::Minutes(1);
  } else if (unit == "h") {
    scale = absl::Hours(1);
  } else if (unit.empty()) {
    *error = absl::StrCat(QuoteShortened(text), " needs a unit (ms, s, m or h)");
    return std::nullopt;
  } else {
    *error = absl::StrCat(QuoteShortened(text), " has an unknown unit ", QuoteShortened(unit, 20),
                          " (ms, s, m or h)");
    return std::nullopt;
  }
  if (number > 1e9) {
    *error = absl::StrCat(QuoteShortened(text), " is too long");
    return std::nullopt;
  }
  return number * scale;
}

std::optional<uint64_t> ParseSize(absl::string_view text, std::string* error) {
  double number = 0;
  absl::string_view unit;
  if (!SplitNumber(text, &number, &unit)) {
    *error = absl::StrCat(QuoteShortened(text), " is not a size (e.g. 4096, 64KiB, 8MiB, 1GiB)");
    return std::nullopt;
  }
  double scale = 0;
  if (unit.empty() || unit == "B") {
    scale = 1;
  } else if (unit == "KiB") {
    scale = 1024.0;
  } else if (unit == "MiB") {
    scale = 1024.0 * 1024;
  } else if (unit == "GiB") {
    scale = 1024.0 * 1024 * 1024;
  } else {
    *error = absl::StrCat(QuoteShortened(text), " has an unknown unit ", QuoteShortened(unit, 20),
                          " (KiB, MiB or GiB)");
    return std::nullopt;
  }
  double bytes = number * scale;
  if (bytes != std::floor(bytes) || bytes > 1e15) {
    *error = absl::StrCat(QuoteShortened(text), " is not a whole number of bytes");
    return std::nullopt;
  }
  return static_cast<uint64_t>(bytes);
}

std::optional<double> ParsePercent(absl::string_view text, std::string* error) {
  double number = 0;
  absl::string_view unit;
  if (!SplitNumber(text, &number, &unit) || unit != "%" || number > 100) {
    *error = absl::StrCat(QuoteShortened(text), " is not a percentage from 0% to 100%");
    return std::nullopt;
  }
  return number / 100;
}

}  // namespace confgate::config
