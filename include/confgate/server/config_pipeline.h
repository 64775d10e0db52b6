// The one config pipeline: Load -> Validate -> Build, shared by `--check`, start-up and
// reloads, in that order. Only what binds sockets (listeners, the admin port) is left to the
// Server, so --check can never pass a file that start-up refuses.
//
//   Load      config::LoadConfigFile: read the file, parse it, check it against the schema.
//   Validate  the files it names: TLS certificates, keys and CAs (network::CheckTlsFiles).
//   Build     main thread: the process-wide settings (a new process checks its admin token
//             and access log; a reload keeps the running ones), name resolution, and the
//             runtime snapshot (BuildRuntimeSnapshot).
//
// Load and Validate touch nothing shared, so reloads run them on config::ConfigReloader's
// thread; Build runs on the main thread.
#pragma once

#include <string>
#include <vector>

#include "confgate/config/config.h"
#include "confgate/config/loader.h"
#include "confgate/config/reloader.h"
#include "confgate/server/runtime.h"
#include "confgate/upstream/host.h"

namespace confgate::server {

// What Build produced: the snapshot to run, or every problem found.
struct PreparedConfig {
  std::vector<config::ConfigError> errors;  // empty when ok
  RuntimeSnapshotPtr snapshot;
  upstream::DnsResults dns;  // the answers the snapshot was built with (seeds the refresher)
  bool process_settings_kept = false;  // a reload changed workers/admin/access_log: kept
  bool ok() const { return errors.empty(); }
};

// How a trigger goes through the pipeline (the only place behaviour depends on the trigger).
struct TriggerPolicy {
  bool reads_file;              // Load and Validate run (on the reloader thread)
  bool resolves_missing_names;  // Build looks up names the DNS refresher has no answer for
  bool counts_as_reload;        // counted in the reload metrics; re-seeds the DNS refresher
};
TriggerPolicy PolicyOf(config::ReloadTrigger trigger);

// Resolves (blocking, on the main thread) every name in `config` that `known` has no answer
// for; an unresolvable name maps to no addresses and is logged. Start-up and reload.
upstream::DnsResults ResolveNames(const config::Config& config, const upstream::DnsResults& known);

// Workers, admin and access_log are fixed for the life of the process: a reload keeps the
// running ones. Returns true when `next` asked for a change (which is then ignored).
bool KeepProcessSettings(const config::Config& running, config::Config& next);

class ConfigPipeline {
 public:
  explicit ConfigPipeline(std::string path) : path_(std::move(path)) {}

  const std::string& path() const { return path_; }

  // Load then Validate. Any thread.
  config::LoadResult LoadAndValidate() const;

  // Build, main thread. `running` is null for a new process (start-up, --check); for a reload,
  // the snapshot in service, whose hosts and caches carry over. `known` are DNS answers at
  // hand; names without one are looked up when `resolve_missing_names` (the trigger's policy).
  PreparedConfig Build(config::Config next, const RuntimeSnapshot* running,
                       const upstream::DnsResults& known, bool resolve_missing_names) const;

  // Load -> Validate -> Build for a new process: --check prints its errors, start-up runs it.
  PreparedConfig Prepare() const;

 private:
  std::string path_;
};

}  // namespace confgate::server
