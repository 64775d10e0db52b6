// Route table: the first route whose match accepts a request wins (design.md "Route kinds").
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "confgate/config/config.h"

namespace confgate::router {

// What a request is for, after `auto` has been resolved from the method.
enum class RequestKind { kRead, kWatch, kWrite };

const char* RequestKindName(RequestKind kind);

struct Route {
  config::RouteMatch match;
  std::string upstream;
  size_t upstream_index = 0;  // index into the snapshot's clusters
  config::RouteKind kind = config::RouteKind::kAuto;
  std::optional<absl::Duration> response_timeout;
  std::optional<absl::Duration> total_timeout;
  std::optional<config::CacheConfig> cache;  // enabled caches only
  config::WatchConfig watch;
  size_t index = 0;  // position in the route table
  int line = 0;

  // `auto`: GET and HEAD read, everything else writes.
  RequestKind KindFor(absl::string_view method) const;
};

class RouteTable {
 public:
  // `upstream_names[i]` is the name of cluster i; routes to other names were rejected by the
  // validator, so they cannot occur here.
  RouteTable(const std::vector<config::RouteConfig>& routes,
             const std::vector<std::string>& upstream_names);

  // nullptr when no route matches.
  const Route* Match(absl::string_view method, absl::string_view path,
                     absl::string_view query) const;

  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
};

// True when the query string has a parameter named `name` ("a=1&name=2", "name", "name=").
bool QueryHasParam(absl::string_view query, absl::string_view name);
// The raw value of the first parameter `name`, if present.
std::optional<absl::string_view> QueryParam(absl::string_view query, absl::string_view name);

}  // namespace confgate::router
