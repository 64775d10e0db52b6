// The upstream file into a Config. yaml-cpp builds the node tree (its exceptions stop here);
// the section parsers (sections.h) walk it with the schema checks of schema.h and collect every
// problem with its field path and line, so one --check run shows them all.
#include "confgate/config/loader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "confgate/common/file.h"
#include "config/sections.h"
#include "config/yaml_document.h"

namespace confgate::config {

std::string ConfigError::ToString() const {
  std::string out = field_path;
  if (line > 0) {
    absl::StrAppend(&out, out.empty() ? "" : ": ", "line ", line);
  }
  absl::StrAppend(&out, out.empty() ? "" : ": ", message);
  return out;
}

LoadResult LoadConfigFromString(const std::string& yaml_text, const std::string& source_name) {
  LoadResult result;
  std::optional<YAML::Node> document = ParseSingleDocument(yaml_text, result.errors);
  if (!document.has_value()) {
    return result;
  }
  const YAML::Node& root = *document;
  Validator v;
  try {
    if (!root.IsMap()) {
      v.Error("", root, absl::StrCat(source_name, " must be a YAML mapping"));
      result.errors = v.TakeErrors();
      return result;
    }
    Config& config = result.config;
    // Upstreams first: routes refer to them, wherever they are in the file.
    if (root["upstreams"]) {
      ParseUpstreams(v, root["upstreams"], config);
    }
    bool has_listeners = false;
    bool has_upstreams = false;
    bool has_routes = false;
    v.ForEachKey(root, "",
                 {"listeners", "admin", "workers", "limits", "access_log", "upstreams", "routes"},
                 [&](const std::string& key, const YAML::Node& value) {
                   if (key == "listeners") {
                     has_listeners = true;
                     ParseListeners(v, value, config);
                   } else if (key == "admin") {
                     ParseAdmin(v, value, config);
                   } else if (key == "workers") {
                     ParseWorkers(v, value, config);
                   } else if (key == "limits") {
                     ParseLimits(v, value, config);
                   } else if (key == "access_log") {
                     ParseAccessLog(v, value, config);
                   } else if (key == "upstreams") {
                     has_upstreams = true;
                   } else if (key == "routes") {
                     has_routes = true;
                     ParseRoutes(v, value, config);
                   }
                 });
    if (!has_listeners) v.Error("listeners", 0, "is required");
    if (!has_upstreams) v.Error("upstreams", 0, "is required");
    if (!has_routes) v.Error("routes", 0, "is required");
  } catch (const YAML::Exception& e) {
    v.Error("", e.mark.line < 0 ? 0 : e.mark.line + 1,
            absl::StrCat("invalid YAML: ", Shortened(e.msg, 200)));
  }
  result.errors = v.TakeErrors();
  std::stable_sort(result.errors.begin(), result.errors.end(),
                   [](const ConfigError& a, const ConfigError& b) {
                     return (a.line == 0 ? INT32_MAX : a.line) < (b.line == 0 ? INT32_MAX : b.line);
                   });
  return result;
}

LoadResult LoadConfigFile(const std::string& path, uint64_t max_bytes) {
  absl::StatusOr<std::string> text = ReadRegularFile(path, max_bytes);
  if (!text.ok()) {
    LoadResult result;
    result.errors.push_back(ConfigError{"", 0, std::string(text.status().message())});
    return result;
  }
  return LoadConfigFromString(*text, path);
}

int WriteCheckReport(const std::string& path, const std::vector<ConfigError>& errors,
                     std::ostream& out) {
  if (errors.empty()) {
    out << path << ": ok\n";
    return 0;
  }
  for (const ConfigError& error : errors) {
    out << path << ": " << error.ToString() << "\n";
  }
  out << path << ": " << errors.size() << (errors.size() == 1 ? " problem" : " problems") << "\n";
  return 1;
}

}  // namespace confgate::config
