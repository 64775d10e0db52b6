// One stored response, shared read-only between the cache, waiters and snapshots.
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "confgate/http/header_map.h"

namespace confgate::cache {

struct CachedResponse {
  int status = 200;
  http::HeaderMap headers;  // end-to-end headers as the upstream sent them
  std::string body;
  absl::Time stored_at;        // when the response arrived
  absl::Duration initial_age;  // the upstream's Age header then (never negative)
  absl::Duration fresh_for;    // freshness lifetime
  // Loaded from a snapshot: its times come from disk and from a wall clock that may have
  // moved since, so it is never fresh; only an upstream answer replaces it.
  bool from_snapshot = false;

  // Never negative: a wall clock stepped back (or a time stored "in the future") counts as no
  // time spent in the cache, not as negative age.
  absl::Duration Age(absl::Time now) const {
    return initial_age + std::max(absl::ZeroDuration(), now - stored_at);
  }
  bool Fresh(absl::Time now) const { return !from_snapshot && Age(now) < fresh_for; }
  const absl::string_view* Header(absl::string_view name) const { return headers.Get(name); }
  size_t Bytes() const;
};
using CachedResponsePtr = std::shared_ptr<const CachedResponse>;

}  // namespace confgate::cache
