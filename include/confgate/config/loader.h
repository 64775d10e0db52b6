// The Load step of the config pipeline (server/config_pipeline.h): the upstream file into a
// Config, with every problem of its syntax and schema reported at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "confgate/config/config.h"

namespace confgate::config {

// One problem in the file: "upstreams.config-service.servers[1].address: line 14: ...".
struct ConfigError {
  std::string field_path;
  int line = 0;  // 1-based; 0 when the problem has no single line
  std::string message;
  std::string ToString() const;
};

struct LoadResult {
  Config config;                    // meaningful only when errors is empty
  std::vector<ConfigError> errors;  // every problem found, in file order
  bool ok() const { return errors.empty(); }
};

// Parses and validates YAML text. `source_name` names the file in messages.
LoadResult LoadConfigFromString(const std::string& yaml_text, const std::string& source_name);

// The largest upstream file confgate reads (fixed). yaml-cpp needs a few hundred bytes of memory
// per node, so the cap is what bounds a reload's memory as well as its time.
constexpr uint64_t kMaxConfigFileBytes = 8 * 1024 * 1024;
// At most this many YAML nodes (scalars, lists, maps, aliases), counted before any is built: a
// few hundred bytes each in memory, so the cap bounds a parse to a few tens of MiB. Thousands of
// upstreams with their servers fit.
constexpr size_t kMaxConfigNodes = 200000;

// Reads the file (a read failure is reported as one ConfigError with an empty path). Only a
// regular file of at most `max_bytes` is read: a FIFO, a device or a larger file is an error
// at once.
LoadResult LoadConfigFile(const std::string& path, uint64_t max_bytes = kMaxConfigFileBytes);

// What `confgate --check -c FILE` prints: every problem of `path` (or "ok") to `out`. Returns
// the exit code: 0 when `errors` is empty, else 1.
int WriteCheckReport(const std::string& path, const std::vector<ConfigError>& errors,
                     std::ostream& out);

}  // namespace confgate::config
