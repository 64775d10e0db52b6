// The request key maglev hashes on, as `hash_key` names it: `header:NAME`, `cookie:NAME`,
// `path` or `client_ip`.
#pragma once

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "confgate/http/codec.h"

namespace confgate::http {

// True when `spec` is one of the four forms (with a non-empty NAME).
bool IsValidHashKeySpec(absl::string_view spec);

// The key's value for this request; nullopt when the request does not carry it.
std::optional<std::string> ExtractHashKey(absl::string_view spec, const RequestHead& head,
                                          absl::string_view client_ip);

}  // namespace confgate::http
