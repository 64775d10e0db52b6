#include "confgate/server/server.h"

#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "confgate/admin/admin_server.h"
#include "confgate/cache/snapshot.h"
#include "confgate/common/log.h"
#include "confgate/config/loader.h"
#include "confgate/event/dispatcher.h"
#include "confgate/network/socket.h"
#include "confgate/network/tls.h"
#include "server/admin_backend.h"
#include "server/cache_persister.h"
#include "server/config_reloader.h"
#include "server/control_plane.h"
#include "server/dns_refresher.h"
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
// listener on port 0 gets its port from the first socket; the others bind that port. Each
// worker's list pairs the configured address with its socket.
absl::StatusOr<std::vector<std::vector<std::pair<std::string, int>>>> OpenListenSockets(
    const std::vector<config::ListenerConfig>& listeners, uint32_t workers) {
  std::vector<std::vector<std::pair<std::string, int>>> per_worker(workers);
  for (const config::ListenerConfig& listener : listeners) {
    config::SocketAddress address = listener.address;
    for (uint32_t i = 0; i < workers; ++i) {
      absl::StatusOr<int> fd = network::CreateListenSocket(address);
      if (!fd.ok()) {
        for (auto& fds : per_worker) {
          for (const auto& [name, open_fd] : fds) {
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
      per_worker[i].emplace_back(listener.address.ToString(), *fd);
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
    // What a writer killed mid-write left behind; no write has started yet.
    if (int removed = cache::RemoveStaleSnapshotTemps(path); removed > 0) {
      Log(LogLevel::kInfo, "stale cache snapshot temp files removed",
          {{"path", path}, {"files", absl::StrCat(removed)}});
    }
    absl::StatusOr<cache::DecodedSnapshot> snapshot =
        cache::ReadSnapshotFile(path, cache::MaxSnapshotFileBytes(route.cache->max_bytes));
    if (!snapshot.ok()) {
      Log(snapshot.status().code() == absl::StatusCode::kNotFound ? LogLevel::kInfo
                                                                  : LogLevel::kWarn,
          "cache snapshot not loaded",
          {{"path", path}, {"reason", std::string(snapshot.status().message())}});
      continue;
    }
    if (!snapshot->dropped.empty()) {
      Log(LogLevel::kWarn, "cache snapshot entries dropped",
          {{"path", path},
           {"dropped", absl::StrCat(snapshot->dropped.size())},
           {"first_reason", snapshot->dropped.front()}});
    }
    size_t loaded = 0;
    for (cache::CacheItem& item : snapshot->items) {
      loaded += runtime.route_caches[route.index]->Insert(std::move(item)) ? 1 : 0;
    }
    // Loaded entries are stale until an upstream answer replaces them: their times came from
    // disk. They still answer in read-only mode and on upstream errors (within max_stale).
    Log(LogLevel::kInfo, "cache snapshot loaded",
        {{"path", path}, {"entries", absl::StrCat(loaded)}});
  }
}

// inotify on the upstream file's directory; `on_change` runs for events that concern the file
// (or a ConfigMap's ..data link).
class ConfigWatch {
 public:
  ConfigWatch(event::Dispatcher& dispatcher, const std::string& path,
              std::function<void()> on_change)
      : on_change_(std::move(on_change)) {
    size_t slash = path.rfind('/');
    std::string directory = slash == std::string::npos ? "." : path.substr(0, slash);
    file_name_ = slash == std::string::npos ? path : path.substr(slash + 1);
    fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ < 0 || inotify_add_watch(fd_, directory.empty() ? "/" : directory.c_str(),
                                     IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE) < 0) {
      Log(LogLevel::kWarn, "cannot watch the upstream file; reload with SIGHUP or POST /reload",
          {{"path", path}});
      return;
    }
    event_ =
        event_new(dispatcher.base(), fd_, EV_READ | EV_PERSIST, &ConfigWatch::OnReadable, this);
    event_add(event_, nullptr);
  }
  ~ConfigWatch() {
    if (event_ != nullptr) {
      event_free(event_);
    }
    if (fd_ >= 0) {
      close(fd_);
    }
  }

 private:
  static void OnReadable(evutil_socket_t fd, short, void* arg) {
    auto* self = static_cast<ConfigWatch*>(arg);
    alignas(inotify_event) char buffer[4096];
    bool relevant = false;
    ssize_t length;
    while ((length = read(fd, buffer, sizeof(buffer))) > 0) {
      for (char* at = buffer; at < buffer + length;) {
        auto* event = reinterpret_cast<inotify_event*>(at);
        std::string name = event->len > 0 ? event->name : "";
        relevant = relevant || name == self->file_name_ || name == "..data";
        at += sizeof(inotify_event) + event->len;
      }
    }
    if (relevant) {
      self->on_change_();
    }
  }

  std::function<void()> on_change_;
  std::string file_name_;
  int fd_ = -1;
  ::event* event_ = nullptr;
};

}  // namespace

config::LoadResult LoadAndValidate(const std::string& config_path) {
  config::LoadResult loaded = config::LoadConfigFile(config_path);
  if (loaded.ok()) {
    // Certificates and keys are checked like the rest of the file: unreadable, malformed,
    // mismatched or expired ones are reported with their field and line.
    loaded.errors = network::CheckTlsFiles(loaded.config);
  }
  return loaded;
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

PreparedConfig LoadAndBuild(const std::string& config_path) {
  PreparedConfig prepared;
  config::LoadResult loaded = LoadAndValidate(config_path);
  prepared.errors = std::move(loaded.errors);
  if (!prepared.errors.empty()) {
    return prepared;
  }
  if (!loaded.config.admin.token_file.empty()) {
    absl::StatusOr<std::string> token = admin::ReadAdminToken(loaded.config.admin.token_file);
    if (!token.ok()) {
      prepared.errors.push_back({"", 0, std::string(token.status().message())});
    }
  }
  if (absl::Status writable = AccessLog::CheckWritable(loaded.config.access_log); !writable.ok()) {
    prepared.errors.push_back({"", 0, std::string(writable.message())});
  }
  prepared.dns = ResolveNames(loaded.config, {});
  absl::StatusOr<RuntimeSnapshotPtr> snapshot =
      BuildRuntimeSnapshot(loaded.config, nullptr, prepared.dns);
  if (!snapshot.ok()) {
    prepared.errors.push_back({"", 0, std::string(snapshot.status().message())});
  } else if (prepared.errors.empty()) {
    prepared.snapshot = *std::move(snapshot);
  }
  return prepared;
}

int RunServer(const PreparedConfig& prepared, const std::string& config_path) {
  const upstream::DnsResults& initial_dns = prepared.dns;
  const config::Config& config = prepared.snapshot->config;
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
  LoadCacheSnapshots(*prepared.snapshot);
  signal(SIGPIPE, SIG_IGN);
  sigset_t handled;
  sigemptyset(&handled);
  sigaddset(&handled, SIGTERM);
  sigaddset(&handled, SIGINT);
  sigaddset(&handled, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &handled, nullptr);

  event::Dispatcher main_dispatcher;
  RealTimeSource time_source;
  ControlPlane control_plane(main_dispatcher, time_source, prepared.snapshot);
  shared.outcome_reporter = &control_plane;
  ProcessAdminBackend admin_backend(prepared.snapshot, control_plane, shared);
  absl::StatusOr<std::unique_ptr<admin::AdminServer>> admin_server =
      admin::AdminServer::Start(main_dispatcher.base(), config.admin, admin_backend);
  if (!admin_server.ok()) {
    Log(LogLevel::kError, "cannot open the admin listener",
        {{"error", std::string(admin_server.status().message())}});
    return 1;
  }
  Log(LogLevel::kInfo, "admin listening", {{"address", (*admin_server)->address()}});
  if (!(*admin_server)->loopback_only()) {
    // The admin port has no TLS, and its reads (/metrics, /status, /config) need no token:
    // off loopback it should sit behind a firewall or network policy.
    Log(LogLevel::kWarn,
        "admin listener is reachable from other hosts; its reads need no token and it has no TLS",
        {{"address", (*admin_server)->address()},
         {"mutating_calls", config.admin.token_file.empty()
                                ? "refused from other hosts (no admin.token_file)"
                                : "need the bearer token from admin.token_file"}});
  }

  std::vector<std::unique_ptr<Worker>> workers;
  int exit_code = 0;
  bool draining = false;

  // Listeners open once the first round of health checks is in (cluster warming), so the
  // first requests already avoid hosts that are down.
  auto open_listeners = [&] {
    if (draining) {
      return;
    }
    absl::StatusOr<std::vector<std::vector<std::pair<std::string, int>>>> sockets =
        OpenListenSockets(config.listeners, worker_count);
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
      workers.push_back(std::make_unique<Worker>(static_cast<int>(i), shared, prepared.snapshot,
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
  std::unique_ptr<ConfigReloader> reloader;  // set below
  SignalHandler on_hup{[&] {
    if (!draining && reloader != nullptr) {
      reloader->Reload("SIGHUP");
    }
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

  RuntimeSnapshotPtr current = prepared.snapshot;
  CachePersister persister(main_dispatcher, time_source);
  persister.Follow(*current);

  // Reload: parse -> validate -> build, then swap the snapshot everywhere. Any error keeps the
  // running configuration.
  std::unique_ptr<DnsRefresher> dns_refresher;
  // Builds and swaps in a snapshot for `next` (a reloaded file, or new DNS answers).
  auto apply = [&](config::Config next, const std::string& trigger) -> absl::Status {
    const config::Config& running = current->config;
    // These are fixed for the life of the process.
    if (next.workers != running.workers ||
        next.admin.address.ToString() != running.admin.address.ToString() ||
        next.admin.token_file != running.admin.token_file ||
        next.access_log.enabled != running.access_log.enabled ||
        next.access_log.path != running.access_log.path) {
      Log(LogLevel::kWarn, "workers, admin and access_log changes need a restart; kept as running",
          {{"trigger", trigger}});
      next.workers = running.workers;
      next.admin = running.admin;
      next.access_log = running.access_log;
    }
    // A reload looks up names the refresher has no answer for (blocking, like start-up); a
    // DNS-triggered rebuild takes the refresher's answers as they are.
    upstream::DnsResults dns =
        trigger == "dns" ? dns_refresher->results() : ResolveNames(next, dns_refresher->results());
    absl::StatusOr<RuntimeSnapshotPtr> built = BuildRuntimeSnapshot(next, current.get(), dns);
    if (!built.ok()) {
      Log(LogLevel::kError, "reload rejected; the running configuration stays",
          {{"trigger", trigger}, {"error", std::string(built.status().message())}});
      admin_backend.CountReload(false);
      return built.status();
    }
    std::vector<config::ListenerConfig> added;
    std::vector<std::string> removed;
    for (const config::ListenerConfig& listener : next.listeners) {
      bool existed = false;
      for (const config::ListenerConfig& old : running.listeners) {
        existed = existed || old.address.ToString() == listener.address.ToString();
      }
      if (!existed) {
        added.push_back(listener);
      }
    }
    for (const config::ListenerConfig& old : running.listeners) {
      bool kept = false;
      for (const config::ListenerConfig& listener : next.listeners) {
        kept = kept || old.address.ToString() == listener.address.ToString();
      }
      if (!kept) {
        removed.push_back(old.address.ToString());
      }
    }
    absl::StatusOr<std::vector<std::vector<std::pair<std::string, int>>>> sockets =
        OpenListenSockets(added, worker_count);
    if (!sockets.ok()) {
      Log(LogLevel::kError, "reload rejected; the running configuration stays",
          {{"trigger", trigger}, {"error", std::string(sockets.status().message())}});
      admin_backend.CountReload(false);
      return sockets.status();
    }
    current = *built;
    control_plane.Reload(current);
    admin_backend.SetSnapshot(current);
    for (size_t i = 0; i < workers.size(); ++i) {
      workers[i]->UpdateSnapshot(current, std::move((*sockets)[i]), removed);
    }
    persister.Follow(*current);
    if (trigger != "dns") {
      dns_refresher->Watch(current->config, dns);
      admin_backend.CountReload(true);
    }
    Log(LogLevel::kInfo, "configuration reloaded",
        {{"trigger", trigger},
         {"listeners_added", absl::StrCat(added.size())},
         {"listeners_removed", absl::StrCat(removed.size())}});
    return absl::OkStatus();
  };
  // The file is read and parsed on the reloader's thread; this runs back on the main thread.
  auto apply_loaded = [&](config::LoadResult loaded, const std::string& trigger) -> absl::Status {
    if (!loaded.ok()) {
      std::string problems;
      for (const config::ConfigError& error : loaded.errors) {
        Log(LogLevel::kError, "reload rejected; the running configuration stays",
            {{"trigger", trigger}, {"error", error.ToString()}});
        absl::StrAppend(&problems, problems.empty() ? "" : "; ", error.ToString());
      }
      admin_backend.CountReload(false);
      return absl::InvalidArgumentError(problems);
    }
    return apply(std::move(loaded.config), trigger);
  };
  reloader = std::make_unique<ConfigReloader>(
      main_dispatcher, [&config_path] { return LoadAndValidate(config_path); }, apply_loaded);
  dns_refresher = std::make_unique<DnsRefresher>(main_dispatcher, [&] {
    if (!draining) {
      apply(current->config, "dns").IgnoreError();
    }
  });
  dns_refresher->Watch(current->config, initial_dns);
  admin_backend.set_reload(
      [&](std::function<void(absl::Status)> done) { reloader->Reload("admin", std::move(done)); });

  // Watch the file's directory, so an atomic rename or a Kubernetes ConfigMap symlink swap
  // (..data) is seen; bursts of events are folded into one reload.
  event::TimerPtr reload_debounce = main_dispatcher.CreateTimer([&] {
    if (!draining) {
      reloader->Reload("file change");
    }
  });
  ConfigWatch watch(main_dispatcher, config_path,
                    [&] { reload_debounce->Enable(absl::Milliseconds(200)); });

  // Session-ticket keys rotate on the main thread; the previous key still opens tickets.
  event::TimerPtr ticket_rotation;
  ticket_rotation = main_dispatcher.CreateTimer([&] {
    network::TicketKeys::Process().Rotate();
    ticket_rotation->Enable(network::kTicketKeyRotation);
  });
  ticket_rotation->Enable(network::kTicketKeyRotation);

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
  persister.WriteAll();
  access_log.Flush();
  Log(LogLevel::kInfo, "stopped");
  return exit_code;
}

}  // namespace confgate::server
