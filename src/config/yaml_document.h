// The upstream file as one YAML document: yaml-cpp's exceptions stop here, and a file with a
// second document (a stray "---") is refused instead of silently using only the first.
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <vector>

#include "confgate/config/loader.h"

namespace confgate::config {

// The root node of `text`, or nullopt with the problem (and its line) added to `errors`.
std::optional<YAML::Node> ParseSingleDocument(const std::string& text,
                                              std::vector<ConfigError>& errors);

}  // namespace confgate::config
