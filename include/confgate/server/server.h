// The process: the main thread (signals, reloads, health checks, the admin listener, the
// access-log writer, drain) and the worker threads that serve the listeners.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "confgate/common/time_source.h"
#include "confgate/config/config.h"
#include "confgate/config/loader.h"
#include "confgate/config/reloader.h"
#include "confgate/event/dispatcher.h"
#include "confgate/server/access_log.h"
#include "confgate/server/config_pipeline.h"
#include "confgate/server/runtime.h"

namespace confgate::admin {
class AdminServer;
}  // namespace confgate::admin

namespace confgate::server {

class CachePersister;
class ControlPlane;
class DnsRefresher;
class ProcessAdminBackend;
class Worker;
struct SharedState;

// Listeners a reload opens and closes, by configured address.
struct ListenerChanges {
  std::vector<config::ListenerConfig> added;
  std::vector<std::string> removed;
};
ListenerChanges DiffListeners(const std::vector<config::ListenerConfig>& running,
                              const std::vector<config::ListenerConfig>& next);

class Server {
 public:
  // `prepared` is what pipeline.Prepare() returned, ok; `pipeline` runs again on every reload.
  Server(const ConfigPipeline& pipeline, PreparedConfig prepared);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Start-up, then the main loop until SIGTERM or SIGINT and a drain. Returns the exit code.
  int Run();

 private:
  class ProcessEvents;  // the signals and the upstream file's watch, on the main loop
  using ListenSockets = std::vector<std::vector<std::pair<std::string, int>>>;
  enum class Phase { kWarming, kServing, kDraining };

  // Start-up.
  bool Start();
  bool StartAdmin();
  void StartTimers();
  void StartReloads();
  void OpenListeners();  // once the first health checks are in (cluster warming)
  // Triggers: signals, the file watch, POST /reload, new DNS answers.
  void OnSignal(int signal_number);
  void OnTrigger(config::ReloadTrigger trigger);
  // Reload apply, main thread: Build, then publish to the control plane and the workers.
  absl::Status ApplyLoaded(config::LoadResult loaded, config::ReloadTrigger trigger);
  absl::Status Apply(config::Config next, config::ReloadTrigger trigger);
  absl::Status Reject(config::ReloadTrigger trigger, const absl::Status& error);
  void Publish(PreparedConfig built, ListenSockets sockets, const ListenerChanges& changes,
               config::ReloadTrigger trigger);
  // Drain and stop.
  void StartDrain(const char* signal_name);
  void PollDrain();
  void Stop();

  const ConfigPipeline& pipeline_;
  upstream::DnsResults initial_dns_;
  RuntimeSnapshotPtr current_;
  uint32_t worker_count_;
  AccessLog access_log_;
  std::unique_ptr<SharedState> shared_;
  event::Dispatcher dispatcher_;
  RealTimeSource time_source_;
  std::unique_ptr<ControlPlane> control_plane_;
  std::unique_ptr<ProcessAdminBackend> admin_backend_;
  std::unique_ptr<admin::AdminServer> admin_server_;
  std::vector<std::unique_ptr<Worker>> workers_;
  Phase phase_ = Phase::kWarming;
  int exit_code_ = 0;
  absl::Time drain_deadline_;
  event::TimerPtr flush_timer_;
  event::TimerPtr drain_timer_;
  event::TimerPtr ticket_rotation_;
  std::unique_ptr<CachePersister> persister_;
  std::unique_ptr<config::ConfigReloader> reloader_;
  std::unique_ptr<DnsRefresher> dns_refresher_;
  event::TimerPtr reload_debounce_;
  std::unique_ptr<ProcessEvents> events_;
};

}  // namespace confgate::server
