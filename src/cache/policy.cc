#include "confgate/cache/policy.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "confgate/common/hash.h"

namespace confgate::cache {
namespace {

std::optional<absl::Duration> DeltaSeconds(absl::string_view value) {
  int64_t seconds = 0;
  value = absl::StripAsciiWhitespace(value);
  if (absl::ConsumePrefix(&value, "\"")) {
    absl::ConsumeSuffix(&value, "\"");
  }
  if (!absl::SimpleAtoi(value, &seconds) || seconds < 0) {
    return std::nullopt;
  }
  return absl::Seconds(seconds);
}

}  // namespace

CacheControl ParseCacheControl(const http::HeaderMap& headers) {
  CacheControl result;
  for (const http::HeaderMap::Entry& entry : headers.entries()) {
    if (!http::FieldNameEquals(entry.name, "cache-control")) {
      continue;
    }
    for (absl::string_view directive : absl::StrSplit(entry.value, ',')) {
      directive = absl::StripAsciiWhitespace(directive);
      size_t eq = directive.find('=');
      std::string name = absl::AsciiStrToLower(directive.substr(0, eq));
      absl::string_view value =
          eq == absl::string_view::npos ? absl::string_view() : directive.substr(eq + 1);
      if (name == "no-store") {
        result.no_store = true;
      } else if (name == "no-cache") {
        result.no_cache = true;
      } else if (name == "private") {
        result.is_private = true;
      } else if (name == "max-age") {
        result.max_age = DeltaSeconds(value);
        if (!result.max_age.has_value()) {
          result.max_age = absl::ZeroDuration();  // an invalid max-age means stale (RFC 9111)
        }
      } else if (name == "s-maxage") {
        result.s_maxage = DeltaSeconds(value);
        if (!result.s_maxage.has_value()) {
          result.s_maxage = absl::ZeroDuration();
        }
      }
    }
  }
  return result;
}

bool IsCredentialHeader(absl::string_view name) {
  return absl::EqualsIgnoreCase(name, "authorization") ||
         absl::EqualsIgnoreCase(name, "proxy-authorization") ||
         absl::EqualsIgnoreCase(name, "cookie");
}

bool RequestAllowsCachedAnswer(const http::RequestHead& request) {
  CacheControl control = ParseCacheControl(request.headers);
  if (control.no_cache || control.no_store ||
      (control.max_age.has_value() && *control.max_age <= absl::ZeroDuration())) {
    return false;
  }
  return !request.headers.HasToken("pragma", "no-cache");
}

std::optional<std::string> WhyResponseNotStorable(const http::ResponseHead& response) {
  if (response.status != 200) {
    return "status is not 200";
  }
  CacheControl response_control = ParseCacheControl(response.headers);
  if (response_control.no_store) {
    return "response says no-store";
  }
  if (response_control.is_private) {
    return "response is private";
  }
  if (response.headers.Has("set-cookie")) {
    return "response sets a cookie";
  }
  for (const std::string& name : VaryNames(response)) {
    if (name == "*") {
      return "response varies on everything";
    }
  }
  return std::nullopt;
}

std::optional<std::string> WhyNotStorable(const http::RequestHead& request,
                                          const http::ResponseHead& response,
                                          const config::CacheConfig& config) {
  if (std::optional<std::string> why_not = WhyResponseNotStorable(response)) {
    return why_not;
  }
  if (ParseCacheControl(request.headers).no_store) {
    return "request says no-store";
  }
  // One client's config must never reach another: a credential must be part of the key.
  for (const http::HeaderMap::Entry& entry : request.headers.entries()) {
    if (!IsCredentialHeader(entry.name)) {
      continue;
    }
    bool keyed = std::any_of(
        config.key_headers.begin(), config.key_headers.end(),
        [&](const std::string& key) { return absl::EqualsIgnoreCase(key, entry.name); });
    if (!keyed) {
      return absl::StrCat("request carries ", entry.name, " and it is not in key_headers");
    }
  }
  return std::nullopt;
}

absl::Duration FreshnessLifetime(const http::ResponseHead& response,
                                 const config::CacheConfig& config, absl::Time now) {
  CacheControl control = ParseCacheControl(response.headers);
  if (control.s_maxage.has_value()) {
    return *control.s_maxage;
  }
  if (control.max_age.has_value()) {
    return *control.max_age;
  }
  if (const absl::string_view* expires = response.headers.Get("expires")) {
    std::optional<absl::Time> expiry = ParseHttpDate(*expires);
    if (!expiry.has_value()) {
      return absl::ZeroDuration();  // an invalid Expires means already expired
    }
    absl::Time date = now;
    if (const absl::string_view* date_header = response.headers.Get("date")) {
      date = ParseHttpDate(*date_header).value_or(now);
    }
    return std::max(absl::ZeroDuration(), *expiry - date);
  }
  return config.default_ttl;
}

std::string PrimaryKey(const http::RequestHead& request, const config::CacheConfig& config,
                       absl::string_view body) {
  // GET and HEAD share entries (a HEAD is answered from a GET's entry); other read methods
  // such as etcd's POST range reads are keyed by method and body.
  bool get_class = request.method == "GET" || request.method == "HEAD";
  std::string key = get_class ? "GET" : request.method;
  const absl::string_view* host = request.headers.Get("host");
  absl::StrAppend(&key, "\n", host != nullptr ? absl::AsciiStrToLower(*host) : "", "\n",
                  request.target());
  for (const std::string& name : config.key_headers) {
    const absl::string_view* value = request.headers.Get(name);
    absl::StrAppend(&key, "\n", absl::AsciiStrToLower(name), ":", value != nullptr ? *value : "",
                    value != nullptr ? "" : "\x01");
  }
  if (!get_class) {
    absl::StrAppend(&key, "\nbody:", body.size(), ":", absl::Hex(Fnv1a64(body)));
  }
  return key;
}

namespace {

// The path of a Location-like reference when it stays on `host`: "/p?q" or an absolute URI
// (or "//host/p") whose authority is `host`; nullopt for other hosts or relative references.
std::optional<std::string> SameHostPath(absl::string_view reference, absl::string_view host) {
  reference = absl::StripAsciiWhitespace(reference);
  absl::string_view rest = reference;
  if (!absl::ConsumePrefix(&rest, "//")) {
    size_t scheme_end = rest.find("://");
    if (scheme_end == absl::string_view::npos || scheme_end == 0) {
      rest = absl::string_view();
    } else {
      rest.remove_prefix(scheme_end + 3);
    }
  }
  absl::string_view path = reference;
  if (!rest.empty()) {  // an absolute URI: its authority must be the request's Host
    size_t authority_end = rest.find_first_of("/?#");
    if (!absl::EqualsIgnoreCase(rest.substr(0, authority_end), host)) {
      return std::nullopt;
    }
    path = authority_end == absl::string_view::npos ? "/" : rest.substr(authority_end);
  }
  if (path.empty() || path[0] != '/' || absl::StartsWith(path, "//")) {
    return std::nullopt;
  }
  return std::string(path.substr(0, path.find_first_of("?#")));
}

}  // namespace

std::vector<std::string> InvalidatedPaths(const http::RequestHead& request,
                                          const http::ResponseHead& response) {
  std::vector<std::string> paths;
  if (response.status < 200 || response.status >= 400) {
    return paths;
  }
  paths.emplace_back(request.path());
  const absl::string_view* host = request.headers.Get("host");
  for (const char* name : {"location", "content-location"}) {
    const absl::string_view* value = response.headers.Get(name);
    if (value == nullptr) {
      continue;
    }
    std::optional<std::string> path =
        SameHostPath(*value, host != nullptr ? *host : absl::string_view());
    if (path.has_value() && std::find(paths.begin(), paths.end(), *path) == paths.end()) {
      paths.push_back(*std::move(path));
    }
  }
  return paths;
}

std::vector<std::string> VaryNames(const http::ResponseHead& response) {
  std::vector<std::string> names;
  for (const http::HeaderMap::Entry& entry : response.headers.entries()) {
    if (!http::FieldNameEquals(entry.name, "vary")) {
      continue;
    }
    for (absl::string_view name : absl::StrSplit(entry.value, ',')) {
      name = absl::StripAsciiWhitespace(name);
      if (!name.empty()) {
        names.push_back(absl::AsciiStrToLower(name));
      }
    }
  }
  return names;
}

std::string VaryKey(const http::RequestHead& request, const std::vector<std::string>& names) {
  std::string key;
  for (const std::string& name : names) {
    const absl::string_view* value = request.headers.Get(name);
    absl::StrAppend(&key, name, value != nullptr ? "=" : "!", value != nullptr ? *value : "", "\n");
  }
  return key;
}

namespace {

absl::string_view OpaqueTag(absl::string_view tag) {
  tag = absl::StripAsciiWhitespace(tag);
  absl::ConsumePrefix(&tag, "W/");  // If-None-Match uses the weak comparison
  return tag;
}

}  // namespace

bool MatchesConditional(const http::RequestHead& request, const CachedResponse& response) {
  if (request.method != "GET" && request.method != "HEAD") {
    return false;
  }
  if (const absl::string_view* if_none_match = request.headers.Get("if-none-match")) {
    const absl::string_view* etag = response.Header("etag");
    if (absl::StripAsciiWhitespace(*if_none_match) == "*") {
      return true;
    }
    if (etag == nullptr) {
      return false;
    }
    for (absl::string_view candidate : absl::StrSplit(*if_none_match, ',')) {
      if (OpaqueTag(candidate) == OpaqueTag(*etag)) {
        return true;
      }
    }
    return false;
  }
  const absl::string_view* if_modified_since = request.headers.Get("if-modified-since");
  const absl::string_view* last_modified = response.Header("last-modified");
  if (if_modified_since == nullptr || last_modified == nullptr) {
    return false;
  }
  std::optional<absl::Time> since = ParseHttpDate(*if_modified_since);
  std::optional<absl::Time> modified = ParseHttpDate(*last_modified);
  return since.has_value() && modified.has_value() && *modified <= *since;
}

bool KeptOn304(absl::string_view name) {
  for (absl::string_view kept :
       {"cache-control", "content-location", "date", "etag", "expires", "vary", "last-modified"}) {
    if (absl::EqualsIgnoreCase(name, kept)) {
      return true;
    }
  }
  return false;
}

void AddServedFields(const CachedResponse& response, bool not_modified, http::HeaderMap& out) {
  for (const http::HeaderMap::Entry& entry : response.headers.entries()) {
    if (!http::IsHopByHop(entry.id) && (!not_modified || KeptOn304(entry.name))) {
      out.AddCopy(entry);
    }
  }
}

std::string AgeValue(absl::Duration age) {
  constexpr int64_t kMaxAgeSeconds = int64_t{1} << 31;
  return absl::StrCat(std::clamp<int64_t>(absl::ToInt64Seconds(age), 0, kMaxAgeSeconds));
}

std::optional<absl::Time> ParseHttpDate(absl::string_view text) {
  absl::Time time;
  std::string error;
  if (absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", std::string(text), absl::UTCTimeZone(), &time,
                      &error)) {
    return time;
  }
  return std::nullopt;
}

std::string FormatHttpDate(absl::Time time) {
  return absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", time, absl::UTCTimeZone());
}

}  // namespace confgate::cache
