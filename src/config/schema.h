// The schema walker shared by the section parsers: checks every key against what the file
// format allows and collects every problem with its field path and line, so one --check run
// shows them all.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "confgate/common/file.h"
#include "confgate/config/config.h"
#include "confgate/config/loader.h"
#include "confgate/config/units.h"

namespace confgate::config {

inline int LineOf(const YAML::Node& node) {
  YAML::Mark mark = node.Mark();
  return mark.line < 0 ? 0 : mark.line + 1;
}

// Values and keys come from the file: a message shows at most 100 bytes of one.
inline std::string Quote(const std::string& text) { return QuoteShortened(text); }

class Validator {
 public:
  std::vector<ConfigError> TakeErrors() { return std::move(errors_); }

  void Error(const std::string& path, const YAML::Node& node, std::string message) {
    errors_.push_back(ConfigError{path, LineOf(node), std::move(message)});
  }
  void Error(const std::string& path, int line, std::string message) {
    errors_.push_back(ConfigError{path, line, std::move(message)});
  }

  // Walks a mapping: calls `on_key` for every allowed key, reports unknown and repeated keys.
  void ForEachKey(const YAML::Node& node, const std::string& path,
                  std::initializer_list<const char*> allowed,
                  const std::function<void(const std::string&, const YAML::Node&)>& on_key) {
    if (!node.IsMap()) {
      Error(path, node, "must be a mapping");
      return;
    }
    std::set<std::string> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      std::string key = it->first.Scalar();
      std::string child_path = Join(path, key);
      if (!seen.insert(key).second) {
        Error(child_path, it->first, absl::StrCat("duplicate key ", Quote(key)));
        continue;
      }
      bool known = false;
      for (const char* name : allowed) {
        known = known || key == name;
      }
      if (!known) {
        Error(child_path, it->first,
              absl::StrCat("unknown key ", Quote(key),
                           " (expected one of: ", absl::StrJoin(allowed, ", "), ")"));
        continue;
      }
      on_key(key, it->second);
    }
  }

  static std::string Join(const std::string& path, const std::string& key) {
    return path.empty() ? Shortened(key) : absl::StrCat(path, ".", Shortened(key));
  }

  std::optional<std::string> String(const YAML::Node& node, const std::string& path) {
    if (!node.IsScalar()) {
      Error(path, node, "must be a scalar value");
      return std::nullopt;
    }
    return node.Scalar();
  }

  std::optional<bool> Bool(const YAML::Node& node, const std::string& path) {
    std::optional<std::string> text = String(node, path);
    if (!text) {
      return std::nullopt;
    }
    if (*text == "true") {
      return true;
    }
    if (*text == "false") {
      return false;
    }
    Error(path, node, absl::StrCat(Quote(*text), " is not true or false"));
    return std::nullopt;
  }

  std::optional<uint64_t> Integer(const YAML::Node& node, const std::string& path, uint64_t min,
                                  uint64_t max) {
    std::optional<std::string> text = String(node, path);
    if (!text) {
      return std::nullopt;
    }
    uint64_t value = 0;
    if (text->empty() || text->find_first_not_of("0123456789") != std::string::npos ||
        !absl::SimpleAtoi(*text, &value) || value < min || value > max) {
      Error(path, node,
            absl::StrCat(Quote(*text), " is not a whole number from ", min, " to ", max));
      return std::nullopt;
    }
    return value;
  }

  std::optional<absl::Duration> Duration(const YAML::Node& node, const std::string& path,
                                         bool allow_zero = false) {
    std::optional<std::string> text = String(node, path);
    if (!text) {
      return std::nullopt;
    }
    std::string error;
    std::optional<absl::Duration> value = ParseDuration(*text, &error);
    if (!value) {
      Error(path, node, error);
    } else if (!allow_zero && *value <= absl::ZeroDuration()) {
      Error(path, node, absl::StrCat(Quote(*text), " must be greater than zero"));
      return std::nullopt;
    }
    return value;
  }

  std::optional<uint64_t> Size(const YAML::Node& node, const std::string& path) {
    std::optional<std::string> text = String(node, path);
    if (!text) {
      return std::nullopt;
    }
    std::string error;
    std::optional<uint64_t> value = ParseSize(*text, &error);
    if (!value) {
      Error(path, node, error);
    } else if (*value == 0) {
      Error(path, node, absl::StrCat(Quote(*text), " must be greater than zero"));
      return std::nullopt;
    }
    return value;
  }

  std::optional<SocketAddress> Address(const YAML::Node& node, const std::string& path,
                                       bool allow_port_zero) {
    std::optional<std::string> text = String(node, path);
    if (!text) {
      return std::nullopt;
    }
    SocketAddress address;
    std::string port_text;
    if (!text->empty() && (*text)[0] == '[') {
      size_t close = text->find(']');
      if (close == std::string::npos || close + 1 >= text->size() || (*text)[close + 1] != ':') {
        Error(path, node, absl::StrCat(Quote(*text), " is not [IPv6]:port"));
        return std::nullopt;
      }
      address.host = text->substr(1, close - 1);
      port_text = text->substr(close + 2);
    } else {
      size_t colon = text->rfind(':');
      if (colon == std::string::npos) {
        Error(path, node, absl::StrCat(Quote(*text), " has no port"));
        return std::nullopt;
      }
      address.host = text->substr(0, colon);
      port_text = text->substr(colon + 1);
      if (address.host.find(':') != std::string::npos) {
        Error(path, node,
              absl::StrCat(Quote(*text), ": write IPv6 addresses in brackets, e.g. [::1]:8080"));
        return std::nullopt;
      }
    }
    if (address.host.empty()) {
      Error(path, node, absl::StrCat(Quote(*text), " has no host"));
      return std::nullopt;
    }
    uint32_t port = 0;
    if (port_text.empty() || port_text.find_first_not_of("0123456789") != std::string::npos ||
        !absl::SimpleAtoi(port_text, &port) || port > 65535 || (port == 0 && !allow_port_zero)) {
      Error(path, node, absl::StrCat(Quote(*text), " has an invalid port ", Quote(port_text)));
      return std::nullopt;
    }
    address.port = static_cast<uint16_t>(port);
    return address;
  }

 private:
  std::vector<ConfigError> errors_;
};

}  // namespace confgate::config
