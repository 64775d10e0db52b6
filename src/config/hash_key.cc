#include "confgate/config/hash_key.h"

#include "absl/strings/strip.h"

namespace confgate::config {

std::optional<HashKeySpec> ParseHashKeySpec(absl::string_view spec) {
  if (spec == "path") {
    return HashKeySpec{HashKeySpec::Source::kPath, ""};
  }
  if (spec == "client_ip") {
    return HashKeySpec{HashKeySpec::Source::kClientIp, ""};
  }
  if (absl::ConsumePrefix(&spec, "header:") && !spec.empty()) {
    return HashKeySpec{HashKeySpec::Source::kHeader, std::string(spec)};
  }
  if (absl::ConsumePrefix(&spec, "cookie:") && !spec.empty()) {
    return HashKeySpec{HashKeySpec::Source::kCookie, std::string(spec)};
  }
  return std::nullopt;
}

}  // namespace confgate::config
