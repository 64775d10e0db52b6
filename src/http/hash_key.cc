#include "confgate/http/hash_key.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"

namespace confgate::http {

namespace {

std::optional<std::string> CookieValue(const RequestHead& head, absl::string_view name) {
  for (const HeaderMap::Entry& entry : head.headers.entries()) {
    if (!FieldNameEquals(entry.name, "cookie")) {
      continue;
    }
    for (absl::string_view pair : absl::StrSplit(entry.value, ';')) {
      pair = absl::StripAsciiWhitespace(pair);
      size_t eq = pair.find('=');
      if (eq != absl::string_view::npos && pair.substr(0, eq) == name) {
        return std::string(pair.substr(eq + 1));
      }
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> ExtractHashKey(const config::HashKeySpec& spec, const RequestHead& head,
                                          absl::string_view client_ip) {
  using Source = config::HashKeySpec::Source;
  switch (spec.source) {
    case Source::kPath:
      return std::string(head.path());
    case Source::kClientIp:
      return std::string(client_ip);
    case Source::kHeader: {
      const absl::string_view* value = head.headers.Get(spec.name);
      return value != nullptr ? std::optional<std::string>(*value) : std::nullopt;
    }
    case Source::kCookie:
      return CookieValue(head, spec.name);
    case Source::kNone:
      break;
  }
  return std::nullopt;
}

}  // namespace confgate::http
