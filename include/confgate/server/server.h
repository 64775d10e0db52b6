// The process: main thread (signals, access-log writer, drain) plus the worker threads.
#pragma once

#include <string>
#include <vector>

#include "confgate/config/config.h"
#include "confgate/config/loader.h"
#include "confgate/server/runtime.h"
#include "confgate/upstream/host.h"

namespace confgate::server {

// What start-up and --check both do before any socket is bound: read and validate the file,
// check its TLS files, admin token file and access log path, resolve its names (one that does
// not resolve yet is a warning, not an error: its server joins once it does) and build the
// runtime snapshot. --check prints `errors`; start-up runs `snapshot`. So --check can never
// pass a file that start-up refuses.
struct PreparedConfig {
  std::vector<config::ConfigError> errors;  // empty when ok
  RuntimeSnapshotPtr snapshot;
  upstream::DnsResults dns;  // the start-up resolution, seeding the DNS refresher
  bool ok() const { return errors.empty(); }
};
PreparedConfig LoadAndBuild(const std::string& config_path);

// The validate half shared with reloads: parse and validate the file, then check its TLS files.
config::LoadResult LoadAndValidate(const std::string& config_path);

// Resolves (blocking, on the main thread) every name in `config` that `known` has no answer
// for; an unresolvable name maps to no addresses and is logged. Start-up and reload.
upstream::DnsResults ResolveNames(const config::Config& config, const upstream::DnsResults& known);

// Opens the listeners of `prepared` (from LoadAndBuild), runs until SIGTERM/SIGINT and a drain.
// `config_path` is read again on reload (SIGHUP, POST /reload, or a change in its directory).
// Returns the process exit code.
int RunServer(const PreparedConfig& prepared, const std::string& config_path);

}  // namespace confgate::server
