// The request key maglev hashes on, from the upstream's parsed `hash_key`
// (config::HashKeySpec).
#pragma once

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "confgate/config/hash_key.h"
#include "confgate/http/codec.h"

namespace confgate::http {

// The key's value for this request; nullopt when the request does not carry it (or `spec` is
// empty).
std::optional<std::string> ExtractHashKey(const config::HashKeySpec& spec, const RequestHead& head,
                                          absl::string_view client_ip);

}  // namespace confgate::http
