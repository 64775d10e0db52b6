#include "confgate/router/router.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace confgate::router {

const char* RequestKindName(RequestKind kind) {
  switch (kind) {
    case RequestKind::kRead:
      return "read";
    case RequestKind::kWatch:
      return "watch";
    case RequestKind::kWrite:
      return "write";
  }
  return "write";
}

RequestKind Route::KindFor(absl::string_view method) const {
  switch (kind) {
    case config::RouteKind::kRead:
      return RequestKind::kRead;
    case config::RouteKind::kWatch:
      return RequestKind::kWatch;
    case config::RouteKind::kWrite:
      return RequestKind::kWrite;
    case config::RouteKind::kAuto:
      break;
  }
  return (method == "GET" || method == "HEAD") ? RequestKind::kRead : RequestKind::kWrite;
}

RouteTable::RouteTable(const std::vector<config::RouteConfig>& routes,
                       const std::vector<std::string>& upstream_names) {
  routes_.reserve(routes.size());
  for (const config::RouteConfig& config : routes) {
    Route route;
    route.match = config.match;
    route.upstream = config.upstream;
    auto it = std::find(upstream_names.begin(), upstream_names.end(), config.upstream);
    route.upstream_index = static_cast<size_t>(it - upstream_names.begin());
    route.kind = config.kind;
    route.response_timeout = config.response_timeout;
    route.watch = config.watch;
    route.total_timeout = config.total_timeout;
    if (config.cache.has_value() && config.cache->enabled) {
      route.cache = config.cache;
    }
    route.index = routes_.size();
    route.line = config.line;
    routes_.push_back(std::move(route));
  }
}

const Route* RouteTable::Match(absl::string_view method, absl::string_view path,
                               absl::string_view query) const {
  for (const Route& route : routes_) {
    if (!absl::StartsWith(path, route.match.prefix)) {
      continue;
    }
    if (!route.match.methods.empty() &&
        std::find(route.match.methods.begin(), route.match.methods.end(), method) ==
            route.match.methods.end()) {
      continue;
    }
    if (!route.match.query.empty()) {
      std::optional<absl::string_view> value = QueryParam(query, route.match.query);
      if (!value.has_value() ||
          (route.match.query_value.has_value() && *value != *route.match.query_value)) {
        continue;
      }
    }
    return &route;
  }
  return nullptr;
}

std::optional<absl::string_view> QueryParam(absl::string_view query, absl::string_view name) {
  for (absl::string_view pair : absl::StrSplit(query, '&')) {
    absl::string_view key = pair.substr(0, pair.find('='));
    if (key == name) {
      size_t eq = pair.find('=');
      return eq == absl::string_view::npos ? absl::string_view() : pair.substr(eq + 1);
    }
  }
  return std::nullopt;
}

bool QueryHasParam(absl::string_view query, absl::string_view name) {
  return QueryParam(query, name).has_value();
}

}  // namespace confgate::router
