// The request key maglev hashes on, as `hash_key` names it: `header:NAME`, `cookie:NAME`,
// `path` or `client_ip`. Parsed once here; http::ExtractHashKey reads it per request.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace confgate::config {

struct HashKeySpec {
  enum class Source : uint8_t { kNone, kPath, kClientIp, kHeader, kCookie };
  Source source = Source::kNone;  // kNone: the upstream hashes on nothing (not maglev)
  std::string name;               // the header or cookie name; empty for path and client_ip

  bool empty() const { return source == Source::kNone; }
};

// One of the four forms (with a non-empty NAME), or nullopt.
std::optional<HashKeySpec> ParseHashKeySpec(absl::string_view spec);

}  // namespace confgate::config
