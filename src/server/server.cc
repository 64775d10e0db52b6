#include "confgate/server/server.h"

#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "confgate/admin/admin_server.h"
#include "confgate/cache/snapshot.h"
#include "confgate/common/log.h"
#include "confgate/event/dispatcher.h"
#include "confgate/network/socket.h"
#include "server/admin_backend.h"
#include "server/control_plane.h"
#include "server/worker.h"

namespace confgate::server {
namespace {

constexpr absl::Duration kAccessLogFlushInterval = absl::Milliseconds(100);
constexpr absl::Duration kDrainPollInterval = absl::Milliseconds(20);

uint32_t WorkerCount(const config::Config& config) {
  if (config.workers > 0) {
    return config.workers;
  }
  unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : cores;
}

// One socket per worker and listener, all bound to the same address with SO_REUSEPORT. A
// listener on port 0 gets its port from the first socket; the others bind that port.
absl::StatusOr<std::vector<std::vector<int>>> OpenListenSockets(const config::Config& config,
                                                                uint32_t workers) {
  std::vector<std::vector<int>> per_worker(workers);
  for (const config::ListenerConfig& listener : config.listeners) {
    config::SocketAddress address = listener.address;
    for (uint32_t i = 0; i < workers; ++i) {
      absl::StatusOr<int> fd = network::CreateListenSocket(address);
      if (!fd.ok()) {
        for (auto& fds : per_worker) {
          for (int open_fd : fds) {
            close(open_fd);
          }
        }
        return fd.status();
      }
      if (i == 0) {
        absl::StatusOr<uint16_t> port = network::BoundPort(*fd);
        if (port.ok()) {
          address.port = *port;
        }
        Log(LogLevel::kInfo, "listening",
            {{"address", address.ToString()}, {"workers", absl::StrCat(workers)}});
      }
      per_worker[i].push_back(*fd);
    }
  }
  return per_worker;
}

// A confgate restarted during a full outage still serves the last good config. A bad
// snapshot is logged and ignored, never fatal.
void LoadCacheSnapshots(const RuntimeSnapshot& runtime) {
  for (const router::Route& route : runtime.routes.routes()) {
    if (!route.cache.has_value() || !route.cache->persist.has_value()) {
      continue;
    }
    const std::string& path = route.cache->persist->path;
    absl::StatusOr<std::vector<cache::CacheItem>> items = cache::ReadSnapshotFile(path);
    if (!items.ok()) {
      Log(items.status().code() == absl::StatusCode::kNotFound ? LogLevel::kInfo : LogLevel::kWarn,
          "cache snapshot not loaded",
          {{"path", path}, {"reason", std::string(items.status().message())}});
      continue;
    }
    size_t loaded = 0;
    for (cache::CacheItem& item : *items) {
      loaded += runtime.route_caches[route.index]->Insert(std::move(item)) ? 1 : 0;
    }
    Log(LogLevel::kInfo, "cache snapshot loaded",
        {{"path", path}, {"entries", absl::StrCat(loaded)}});
  }
}

void PersistCache(cache::ResponseCache& route_cache, const std::string& path) {
  absl::Status written = cache::WriteSnapshotFile(path, route_cache.Export());
  if (!written.ok()) {
    Log(LogLevel::kWarn, "cache snapshot not written",
        {{"path", path}, {"reason", std::string(written.message())}});
  }
}

}  // namespace

int RunServer(const config::Config& config) {
  absl::StatusOr<RuntimeSnapshotPtr> snapshot = BuildRuntimeSnapshot(config);
  if (!snapshot.ok()) {
    Log(LogLevel::kError, "cannot build runtime configuration",
        {{"error", std::string(snapshot.status().message())}});
    return 1;
  }
  AccessLog access_log;
  SharedState shared;
  if (config.access_log.enabled) {
    absl::Status opened = access_log.Open(config.access_log.path);
    if (!opened.ok()) {
      Log(LogLevel::kError, "cannot open access log", {{"error", std::string(opened.message())}});
      return 1;
    }
    shared.access_log = &access_log;
  }

  uint32_t worker_count = WorkerCount(config);
  LoadCacheSnapshots(**snapshot);
  event::Dispatcher::InitThreading();
  signal(SIGPIPE, SIG_IGN);
  sigset_t handled;
  sigemptyset(&handled);
  sigaddset(&handled, SIGTERM);
  sigaddset(&handled, SIGINT);
  sigaddset(&handled, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &handled, nullptr);

  event::Dispatcher main_dispatcher;
  RealTimeSource time_source;
  ControlPlane control_plane(main_dispatcher, time_source, *snapshot);
  shared.outcome_reporter = &control_plane;
  ProcessAdminBackend admin_backend(*snapshot, control_plane, shared);
  absl::StatusOr<std::unique_ptr<admin::AdminServer>> admin_server =
      admin::AdminServer::Start(main_dispatcher.base(), config.admin, admin_backend);
  if (!admin_server.ok()) {
    Log(LogLevel::kError, "cannot open the admin listener",
        {{"error", std::string(admin_server.status().message())}});
    return 1;
  }
  Log(LogLevel::kInfo, "admin listening", {{"address", (*admin_server)->address()}});

  std::vector<std::unique_ptr<Worker>> workers;
  int exit_code = 0;
  bool draining = false;

  // Listeners open once the first round of health checks is in (cluster warming), so the
  // first requests already avoid hosts that are down.
  auto open_listeners = [&] {
    if (draining) {
      return;
    }
    absl::StatusOr<std::vector<std::vector<int>>> sockets = OpenListenSockets(config, worker_count);
    if (!sockets.ok()) {
      Log(LogLevel::kError, "cannot open listener",
          {{"error", std::string(sockets.status().message())}});
      exit_code = 1;
      main_dispatcher.Exit();
      return;
    }
    // Signals go to the main thread only: workers start with them blocked.
    sigset_t previous;
    pthread_sigmask(SIG_BLOCK, &handled, &previous);
    for (uint32_t i = 0; i < worker_count; ++i) {
      workers.push_back(std::make_unique<Worker>(static_cast<int>(i), shared, *snapshot,
                                                 std::move((*sockets)[i])));
      workers.back()->Start();
    }
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    Log(LogLevel::kInfo, "started", {{"workers", absl::StrCat(worker_count)}});
  };

  event::TimerPtr flush_timer;
  flush_timer = main_dispatcher.CreateTimer([&] {
    access_log.Flush();
    flush_timer->Enable(kAccessLogFlushInterval);
  });
  flush_timer->Enable(kAccessLogFlushInterval);

  absl::Time drain_deadline;
  event::TimerPtr drain_timer;
  drain_timer = main_dispatcher.CreateTimer([&] {
    uint64_t open = 0;
    for (const auto& worker : workers) {
      open += worker->open_connections();
    }
    if (open == 0 || absl::Now() >= drain_deadline) {
      if (open > 0) {
        Log(LogLevel::kWarn, "drain timeout; closing connections",
            {{"open_connections", absl::StrCat(open)}});
      }
      main_dispatcher.Exit();
      return;
    }
    drain_timer->Enable(kDrainPollInterval);
  });

  auto start_drain = [&](const char* signal_name) {
    if (draining) {
      return;
    }
    draining = true;
    admin_backend.set_ready(false);  // load balancers in front stop sending first
    drain_deadline = absl::Now() + config.limits.drain_timeout;
    Log(LogLevel::kInfo, "draining", {{"signal", signal_name}});
    for (const auto& worker : workers) {
      worker->Drain();
    }
    drain_timer->Enable(kDrainPollInterval);
  };

  struct SignalHandler {
    std::function<void()> callback;
  };
  SignalHandler on_term{[&] { start_drain("SIGTERM"); }};
  SignalHandler on_int{[&] { start_drain("SIGINT"); }};
  SignalHandler on_hup{[] {
    Log(LogLevel::kWarn, "SIGHUP received; hot reload is not implemented yet, config unchanged");
  }};
  auto trampoline = [](evutil_socket_t, short, void* arg) {
    static_cast<SignalHandler*>(arg)->callback();
  };
  ::event* term_event = evsignal_new(main_dispatcher.base(), SIGTERM, trampoline, &on_term);
  ::event* int_event = evsignal_new(main_dispatcher.base(), SIGINT, trampoline, &on_int);
  ::event* hup_event = evsignal_new(main_dispatcher.base(), SIGHUP, trampoline, &on_hup);
  event_add(term_event, nullptr);
  event_add(int_event, nullptr);
  event_add(hup_event, nullptr);
  pthread_sigmask(SIG_UNBLOCK, &handled, nullptr);

  // Snapshots are written here on the main thread, never on a worker.
  std::vector<event::TimerPtr> persist_timers;
  const RuntimeSnapshot& runtime = **snapshot;
  for (const router::Route& route : runtime.routes.routes()) {
    if (!route.cache.has_value() || !route.cache->persist.has_value()) {
      continue;
    }
    cache::ResponseCache* route_cache = runtime.route_caches[route.index].get();
    const config::CachePersistConfig persist = *route.cache->persist;
    size_t index = persist_timers.size();
    persist_timers.push_back(
        main_dispatcher.CreateTimer([route_cache, persist, index, &persist_timers] {
          PersistCache(*route_cache, persist.path);
          persist_timers[index]->Enable(persist.interval);
        }));
    persist_timers.back()->Enable(persist.interval);
  }

  control_plane.Start([&] {
    open_listeners();
    admin_backend.set_ready(!draining && exit_code == 0);
  });
  main_dispatcher.Run();

  for (const auto& worker : workers) {
    worker->Stop();
  }
  for (const auto& worker : workers) {
    worker->Join();
  }
  workers.clear();
  event_free(term_event);
  event_free(int_event);
  event_free(hup_event);
  persist_timers.clear();
  for (const router::Route& route : runtime.routes.routes()) {
    if (route.cache.has_value() && route.cache->persist.has_value()) {
      PersistCache(*runtime.route_caches[route.index], route.cache->persist->path);
    }
  }
  access_log.Flush();
  Log(LogLevel::kInfo, "stopped");
  return exit_code;
}

}  // namespace confgate::server
