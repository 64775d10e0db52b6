// The routes section: match, kind, timeouts, cache and watch settings.
#include "absl/strings/ascii.h"
#include "config/sections.h"

namespace confgate::config {
namespace {

void ParseCache(Validator& v, const YAML::Node& node, const std::string& path, RouteConfig& route) {
  CacheConfig cache;
  v.ForEachKey(node, path,
               {"enabled", "max_bytes", "max_object_bytes", "default_ttl", "max_stale", "coalesce",
                "key_headers", "persist"},
               [&](const std::string& key, const YAML::Node& value) {
                 std::string field = path + "." + key;
                 if (key == "enabled") {
                   if (auto b = v.Bool(value, field)) cache.enabled = *b;
                 } else if (key == "coalesce") {
                   if (auto b = v.Bool(value, field)) cache.coalesce = *b;
                 } else if (key == "max_bytes") {
                   if (auto s = v.Size(value, field)) cache.max_bytes = *s;
                 } else if (key == "max_object_bytes") {
                   if (auto s = v.Size(value, field)) cache.max_object_bytes = *s;
                 } else if (key == "default_ttl") {
                   if (auto d = v.Duration(value, field, true)) cache.default_ttl = *d;
                 } else if (key == "max_stale") {
                   if (auto d = v.Duration(value, field, true)) cache.max_stale = *d;
                 } else if (key == "key_headers") {
                   if (!value.IsSequence()) {
                     v.Error(field, value, "must be a list of header names");
                     return;
                   }
                   for (size_t i = 0; i < value.size(); ++i) {
                     if (auto h = v.String(value[i], absl::StrCat(field, "[", i, "]"))) {
                       cache.key_headers.push_back(*h);
                     }
                   }
                 } else if (key == "persist") {
                   CachePersistConfig persist;
                   v.ForEachKey(value, field, {"path", "interval"},
                                [&](const std::string& k, const YAML::Node& p) {
                                  if (k == "path") {
                                    if (auto s = v.String(p, field + ".path")) persist.path = *s;
                                  } else if (auto d = v.Duration(p, field + ".interval")) {
                                    persist.interval = *d;
                                  }
                                });
                   if (persist.path.empty()) {
                     v.Error(field + ".path", value, "is required");
                   }
                   cache.persist = persist;
                 }
               });
  if (cache.max_object_bytes > cache.max_bytes) {
    v.Error(path + ".max_object_bytes", node, "must not be larger than max_bytes");
  }
  route.cache = cache;
}

// `query: NAME` (present) or `query: {NAME: VALUE}` (present with that raw value).
void ParseQueryMatch(Validator& v, const YAML::Node& node, const std::string& path,
                     RouteMatch& match) {
  if (!node.IsMap()) {
    if (auto q = v.String(node, path)) match.query = *q;
    return;
  }
  if (node.size() != 1) {
    v.Error(path, node, "must name one parameter: NAME or {NAME: VALUE}");
    return;
  }
  auto entry = node.begin();
  std::optional<std::string> name = v.String(entry->first, path);
  std::optional<std::string> value = v.String(entry->second, path + "." + entry->first.Scalar());
  if (!name || !value) {
    return;
  }
  if (name->empty()) {
    v.Error(path, node, "parameter name must not be empty");
    return;
  }
  match.query = *name;
  match.query_value = *value;
}

void ParseWatch(Validator& v, const YAML::Node& node, const std::string& path, WatchConfig& watch) {
  v.ForEachKey(
      node, path, {"protocol", "max_hold"}, [&](const std::string& key, const YAML::Node& value) {
        std::string field = path + "." + key;
        if (key == "protocol") {
          if (auto p = v.String(value, field)) {
            if (*p == "none") {
              watch.protocol = *p;
            } else {
              v.Error(field, value,
                      absl::StrCat("unknown watch protocol ", Quote(*p), " (only none for now)"));
            }
          }
        } else if (auto d = v.Duration(value, field, true)) {
          watch.max_hold = *d;
        }
      });
}

void ParseMethods(Validator& v, const YAML::Node& m, const std::string& mfield, RouteMatch& match) {
  if (!m.IsSequence() || m.size() == 0) {
    v.Error(mfield, m, "must be a non-empty list of methods");
    return;
  }
  for (size_t j = 0; j < m.size(); ++j) {
    std::string item = absl::StrCat(mfield, "[", j, "]");
    auto method = v.String(m[j], item);
    if (!method) continue;
    bool valid = !method->empty();
    for (char c : *method) {
      valid = valid && absl::ascii_isupper(static_cast<unsigned char>(c));
    }
    if (!valid) {
      v.Error(item, m[j], absl::StrCat(Quote(*method), " is not an uppercase method name"));
    } else {
      match.methods.push_back(*method);
    }
  }
}

void ParseRouteMatch(Validator& v, const YAML::Node& value, const std::string& field,
                     RouteMatch& match) {
  v.ForEachKey(value, field, {"prefix", "methods", "query"},
               [&](const std::string& k, const YAML::Node& m) {
                 std::string mfield = field + "." + k;
                 if (k == "prefix") {
                   if (auto p = v.String(m, mfield)) {
                     if (p->empty() || (*p)[0] != '/') {
                       v.Error(mfield, m, absl::StrCat(Quote(*p), " must start with /"));
                     } else {
                       match.prefix = *p;
                     }
                   }
                 } else if (k == "query") {
                   ParseQueryMatch(v, m, mfield, match);
                 } else if (k == "methods") {
                   ParseMethods(v, m, mfield, match);
                 }
               });
}

void ParseRouteKind(Validator& v, const YAML::Node& value, const std::string& field,
                    RouteConfig& route) {
  if (auto k = v.String(value, field)) {
    if (*k == "read") {
      route.kind = RouteKind::kRead;
    } else if (*k == "watch") {
      route.kind = RouteKind::kWatch;
    } else if (*k == "write") {
      route.kind = RouteKind::kWrite;
    } else if (*k == "auto") {
      route.kind = RouteKind::kAuto;
    } else {
      v.Error(field, value,
              absl::StrCat("unknown kind ", Quote(*k), " (read, watch, write or auto)"));
    }
  }
}

// The keys a route has, for the checks that follow its walk.
struct RouteKeys {
  bool match = false;
  bool upstream = false;
  bool watch = false;
};

void ParseRouteKey(Validator& v, const std::string& key, const YAML::Node& value,
                   const std::string& field, RouteConfig& route, RouteKeys& seen) {
  if (key == "match") {
    seen.match = true;
    ParseRouteMatch(v, value, field, route.match);
  } else if (key == "upstream") {
    seen.upstream = true;
    if (auto u = v.String(value, field)) route.upstream = *u;
  } else if (key == "kind") {
    ParseRouteKind(v, value, field, route);
  } else if (key == "timeouts") {
    v.ForEachKey(value, field, {"response", "total"},
                 [&](const std::string& k, const YAML::Node& t) {
                   if (auto d = v.Duration(t, field + "." + k)) {
                     (k == "total" ? route.total_timeout : route.response_timeout) = *d;
                   }
                 });
  } else if (key == "cache") {
    ParseCache(v, value, field, route);
  } else if (key == "watch") {
    seen.watch = true;
    ParseWatch(v, value, field, route.watch);
  }
}

// What one route must have once its keys are walked: a match, a known upstream, and a watch
// block only on a watch route.
void CheckRoute(Validator& v, const YAML::Node& node, const std::string& path,
                const RouteConfig& route, const RouteKeys& seen, const Config& config) {
  if (seen.watch && route.kind != RouteKind::kWatch) {
    v.Error(path + ".watch", node["watch"], "is used only by kind: watch routes");
  }
  if (!node.IsMap()) {
    return;
  }
  if (!seen.match) {
    v.Error(path + ".match", node, "is required");
  }
  if (!seen.upstream) {
    v.Error(path + ".upstream", node, "is required");
    return;
  }
  bool known = false;
  for (const UpstreamConfig& upstream : config.upstreams) {
    known = known || upstream.name == route.upstream;
  }
  if (!known && !route.upstream.empty()) {
    YAML::Node upstream_node = node["upstream"];
    v.Error(path + ".upstream", upstream_node,
            absl::StrCat("unknown upstream ", Quote(route.upstream)));
  }
}

}  // namespace

void ParseRoutes(Validator& v, const YAML::Node& node, Config& config) {
  if (!node.IsSequence() || node.size() == 0) {
    v.Error("routes", node, "must be a non-empty list of routes");
    return;
  }
  for (size_t i = 0; i < node.size(); ++i) {
    std::string path = absl::StrCat("routes[", i, "]");
    RouteConfig route;
    route.line = LineOf(node[i]);
    RouteKeys seen;
    v.ForEachKey(node[i], path, {"match", "upstream", "kind", "timeouts", "cache", "watch"},
                 [&](const std::string& key, const YAML::Node& value) {
                   ParseRouteKey(v, key, value, path + "." + key, route, seen);
                 });
    CheckRoute(v, node[i], path, route, seen, config);
    config.routes.push_back(std::move(route));
  }
}

}  // namespace confgate::config
