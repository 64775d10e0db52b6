#include "confgate/server/config_pipeline.h"

#include "absl/strings/str_cat.h"
#include "confgate/admin/admin_server.h"
#include "confgate/common/log.h"
#include "confgate/network/tls.h"
#include "confgate/server/access_log.h"

namespace confgate::server {
namespace {

// What a new process opens once from its config, checked without opening it for good: the
// admin token file and the access log.
std::vector<config::ConfigError> CheckProcessSettings(const config::Config& config) {
  std::vector<config::ConfigError> errors;
  if (!config.admin.token_file.empty()) {
    absl::StatusOr<std::string> token = admin::ReadAdminToken(config.admin.token_file);
    if (!token.ok()) {
      errors.push_back({"", 0, std::string(token.status().message())});
    }
  }
  if (absl::Status writable = AccessLog::CheckWritable(config.access_log); !writable.ok()) {
    errors.push_back({"", 0, std::string(writable.message())});
  }
  return errors;
}

}  // namespace

TriggerPolicy PolicyOf(config::ReloadTrigger trigger) {
  switch (trigger) {
    case config::ReloadTrigger::kSignal:
    case config::ReloadTrigger::kFileWatch:
    case config::ReloadTrigger::kAdmin:
      return {.reads_file = true, .resolves_missing_names = true, .counts_as_reload = true};
    case config::ReloadTrigger::kDnsRefresh:
      // The refresher's answers as they are: a name it could not resolve stays without hosts
      // until it can, instead of blocking the main thread on every refresh.
      return {.reads_file = false, .resolves_missing_names = false, .counts_as_reload = false};
  }
  return {.reads_file = true, .resolves_missing_names = true, .counts_as_reload = true};
}

upstream::DnsResults ResolveNames(const config::Config& config, const upstream::DnsResults& known) {
  upstream::DnsResults results;
  for (const config::UpstreamConfig& upstream : config.upstreams) {
    for (const config::ServerConfig& server : upstream.servers) {
      std::string key = upstream::NameKey(server);
      if (key.empty() || results.contains(key)) {
        continue;
      }
      if (auto answer = known.find(key); answer != known.end() && !answer->second.empty()) {
        results[key] = answer->second;
        continue;
      }
      absl::StatusOr<std::vector<std::string>> resolved = upstream::ResolveNow(server.address);
      if (!resolved.ok()) {
        Log(LogLevel::kWarn, "name does not resolve yet; its server joins once it does",
            {{"upstream", upstream.name},
             {"name", key},
             {"retry_every_ms", absl::StrCat(absl::ToInt64Milliseconds(upstream.dns_refresh))},
             {"error", std::string(resolved.status().message())}});
      }
      results[key] = resolved.ok() ? *std::move(resolved) : std::vector<std::string>{};
    }
  }
  return results;
}

bool KeepProcessSettings(const config::Config& running, config::Config& next) {
  if (next.workers == running.workers &&
      next.admin.address.ToString() == running.admin.address.ToString() &&
      next.admin.token_file == running.admin.token_file &&
      next.access_log.enabled == running.access_log.enabled &&
      next.access_log.path == running.access_log.path) {
    return false;
  }
  next.workers = running.workers;
  next.admin = running.admin;
  next.access_log = running.access_log;
  return true;
}

config::LoadResult ConfigPipeline::LoadAndValidate() const {
  config::LoadResult loaded = config::LoadConfigFile(path_);
  if (loaded.ok()) {
    // Certificates and keys are checked like the rest of the file: unreadable, malformed,
    // mismatched or expired ones are reported with their field and line.
    loaded.errors = network::CheckTlsFiles(loaded.config);
  }
  return loaded;
}

PreparedConfig ConfigPipeline::Build(config::Config next, const RuntimeSnapshot* running,
                                     const upstream::DnsResults& known,
                                     bool resolve_missing_names) const {
  PreparedConfig prepared;
  if (running == nullptr) {
    prepared.errors = CheckProcessSettings(next);
  } else {
    prepared.process_settings_kept = KeepProcessSettings(running->config, next);
  }
  prepared.dns = resolve_missing_names ? ResolveNames(next, known) : known;
  absl::StatusOr<RuntimeSnapshotPtr> snapshot = BuildRuntimeSnapshot(next, running, prepared.dns);
  if (!snapshot.ok()) {
    prepared.errors.push_back({"", 0, std::string(snapshot.status().message())});
  } else if (prepared.errors.empty()) {
    prepared.snapshot = *std::move(snapshot);
  }
  return prepared;
}

PreparedConfig ConfigPipeline::Prepare() const {
  config::LoadResult loaded = LoadAndValidate();
  if (!loaded.ok()) {
    PreparedConfig prepared;
    prepared.errors = std::move(loaded.errors);
    return prepared;
  }
  return Build(std::move(loaded.config), nullptr, {}, /*resolve_missing_names=*/true);
}

}  // namespace confgate::server
