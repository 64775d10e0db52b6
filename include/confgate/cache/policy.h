// What may be stored, for how long, and under which key (RFC 9111 as design.md's "Cache
// rules" narrow it). Pure functions over heads.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "confgate/cache/response.h"
#include "confgate/config/config.h"
#include "confgate/http/codec.h"

namespace confgate::cache {

// The directives of one or more Cache-Control fields that the cache acts on.
struct CacheControl {
  bool no_store = false;
  bool no_cache = false;
  bool is_private = false;
  std::optional<absl::Duration> max_age;
  std::optional<absl::Duration> s_maxage;
};
CacheControl ParseCacheControl(const http::HeaderMap& headers);

// Request headers that carry a client's identity; a response to a request carrying one is
// stored only when that header is part of the key.
bool IsCredentialHeader(absl::string_view name);

// Whether the client lets the cache answer without going upstream (no `no-cache`,
// `max-age=0` or `Pragma: no-cache`).
bool RequestAllowsCachedAnswer(const http::RequestHead& request);

// Why a response is not stored whatever request it answers (its status and its own fields);
// nullopt when it may be. Also the check a snapshot entry passes again on load.
std::optional<std::string> WhyResponseNotStorable(const http::ResponseHead& response);
// Why a response is not stored; nullopt when it may be.
std::optional<std::string> WhyNotStorable(const http::RequestHead& request,
                                          const http::ResponseHead& response,
                                          const config::CacheConfig& config);

// How long a stored response is fresh: s-maxage, else max-age, else Expires - Date, else
// default_ttl. `now` stands in for a missing or unparsable Date.
absl::Duration FreshnessLifetime(const http::ResponseHead& response,
                                 const config::CacheConfig& config, absl::Time now);

// The primary key: the method class, Host, the target (path and query), the values of the
// route's key_headers, and for requests with a body a hash of the body.
std::string PrimaryKey(const http::RequestHead& request, const config::CacheConfig& config,
                       absl::string_view body);

// The paths whose entries an unsafe request answered with `response` invalidates (RFC 9111
// section 4.4): none for an error status; else the request's own path, and those of Location
// and Content-Location when they name the request's Host (or no host). Queries cut off: every
// entry of a path goes, whatever its query.
std::vector<std::string> InvalidatedPaths(const http::RequestHead& request,
                                          const http::ResponseHead& response);

// The header names a response's Vary lists (lower case), in order; {"*"} for `Vary: *`.
std::vector<std::string> VaryNames(const http::ResponseHead& response);
// The request's values for those names, as the secondary key.
std::string VaryKey(const http::RequestHead& request, const std::vector<std::string>& names);

// Whether a conditional GET/HEAD (If-None-Match, else If-Modified-Since) is satisfied by the
// stored response, so that a 304 answers it.
bool MatchesConditional(const http::RequestHead& request, const CachedResponse& response);
// The headers a 304 carries over from the stored response (RFC 9110 section 15.4.5).
bool KeptOn304(absl::string_view name);

// Adds the stored fields a cached answer carries to `out`: end-to-end fields only, never
// framing or other hop-by-hop fields whatever was stored (the serving path sets framing from
// the body it sends), and for a 304 only those KeptOn304.
void AddServedFields(const CachedResponse& response, bool not_modified, http::HeaderMap& out);
// The Age field's value: whole seconds, never negative, at most 2^31 (RFC 9111 section 1.2.2).
std::string AgeValue(absl::Duration age);

// HTTP-date (RFC 9110 IMF-fixdate) for Date/Expires/Last-Modified handling.
std::optional<absl::Time> ParseHttpDate(absl::string_view text);
std::string FormatHttpDate(absl::Time time);

}  // namespace confgate::cache
