// The parsers of the upstream file's sections, one per top-level key (and the TLS blocks they
// share). Each walks its nodes with the Validator and fills its part of Config.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

#include "confgate/config/config.h"
#include "config/schema.h"

namespace confgate::config {

// parse_process.cc: listeners, admin, workers, limits, access_log and the TLS blocks.
void ParseListeners(Validator& v, const YAML::Node& node, Config& config);
void ParseAdmin(Validator& v, const YAML::Node& node, Config& config);
void ParseWorkers(Validator& v, const YAML::Node& node, Config& config);
void ParseLimits(Validator& v, const YAML::Node& node, Config& config);
void ParseAccessLog(Validator& v, const YAML::Node& node, Config& config);
UpstreamTlsConfig ParseUpstreamTls(Validator& v, const YAML::Node& node, const std::string& path);

// parse_upstreams.cc: upstreams with their servers, health checks, outlier detection, retries.
void ParseUpstreams(Validator& v, const YAML::Node& node, Config& config);

// parse_routes.cc: routes with their match, cache and watch settings. Runs after
// ParseUpstreams: a route's upstream must name one of config.upstreams.
void ParseRoutes(Validator& v, const YAML::Node& node, Config& config);

}  // namespace confgate::config
