#include "confgate/http/hash_key.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace confgate::http {

bool IsValidHashKeySpec(absl::string_view spec) {
  if (spec == "path" || spec == "client_ip") {
    return true;
  }
  for (absl::string_view prefix : {"header:", "cookie:"}) {
    if (absl::StartsWith(spec, prefix) && spec.size() > prefix.size()) {
      return true;
    }
  }
  return false;
}

std::optional<std::string> ExtractHashKey(absl::string_view spec, const RequestHead& head,
                                          absl::string_view client_ip) {
  if (spec == "path") {
    return std::string(head.path());
  }
  if (spec == "client_ip") {
    return std::string(client_ip);
  }
  if (absl::ConsumePrefix(&spec, "header:")) {
    const absl::string_view* value = head.headers.Get(spec);
    return value != nullptr ? std::optional<std::string>(*value) : std::nullopt;
  }
  if (absl::ConsumePrefix(&spec, "cookie:")) {
    for (const HeaderMap::Entry& entry : head.headers.entries()) {
      if (!FieldNameEquals(entry.name, "cookie")) {
        continue;
      }
      for (absl::string_view pair : absl::StrSplit(entry.value, ';')) {
        pair = absl::StripAsciiWhitespace(pair);
        size_t eq = pair.find('=');
        if (eq != absl::string_view::npos && pair.substr(0, eq) == spec) {
          return std::string(pair.substr(eq + 1));
        }
      }
    }
  }
  return std::nullopt;
}

}  // namespace confgate::http
