#include "confgate/server/server.h"

#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "confgate/admin/admin_server.h"
#include "confgate/common/log.h"
#include "confgate/event/dispatcher.h"
#include "confgate/network/socket.h"
#include "confgate/network/tls.h"
#include "server/admin_backend.h"
#include "server/cache_persister.h"
#include "server/control_plane.h"
#include "server/dns_refresher.h"
#include "server/worker.h"

namespace confgate::server {
namespace {

constexpr absl::Duration kAccessLogFlushInterval = absl::Milliseconds(100);
constexpr absl::Duration kDrainPollInterval = absl::Milliseconds(20);
// Bursts of file events (an editor's write, a ConfigMap's symlink swap) fold into one reload.
constexpr absl::Duration kReloadDebounce = absl::Milliseconds(200);

uint32_t WorkerCount(const config::Config& config) {
  if (config.workers > 0) {
    return config.workers;
  }
  unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : cores;
}

// The signals the main loop handles; blocked everywhere else.
sigset_t HandledSignals() {
  sigset_t handled;
  sigemptyset(&handled);
  sigaddset(&handled, SIGTERM);
  sigaddset(&handled, SIGINT);
  sigaddset(&handled, SIGHUP);
  return handled;
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

// The main loop's process events: SIGTERM, SIGINT, SIGHUP and the upstream file's watch. The
// only libevent calls of the Server, kept together.
class Server::ProcessEvents {
 public:
  ProcessEvents(event::Dispatcher& dispatcher, const std::string& config_path,
                std::function<void(int)> on_signal, std::function<void()> on_file_change)
      : on_signal_(std::move(on_signal)),
        watch_(dispatcher, config_path, std::move(on_file_change)) {
    for (int i = 0; i < kSignals; ++i) {
      handlers_[i] = {this, kSignalNumbers[i]};
      events_[i] = evsignal_new(dispatcher.base(), kSignalNumbers[i], &ProcessEvents::OnSignal,
                                &handlers_[i]);
      event_add(events_[i], nullptr);
    }
  }
  ~ProcessEvents() {
    for (::event* event : events_) {
      event_free(event);
    }
  }

 private:
  static constexpr int kSignals = 3;
  static constexpr int kSignalNumbers[kSignals] = {SIGTERM, SIGINT, SIGHUP};
  struct Handler {
    ProcessEvents* owner;
    int signal_number;
  };
  static void OnSignal(evutil_socket_t, short, void* arg) {
    auto* handler = static_cast<Handler*>(arg);
    handler->owner->on_signal_(handler->signal_number);
  }

  std::function<void(int)> on_signal_;
  ConfigWatch watch_;
  Handler handlers_[kSignals];
  ::event* events_[kSignals] = {};
};

ListenerChanges DiffListeners(const std::vector<config::ListenerConfig>& running,
                              const std::vector<config::ListenerConfig>& next) {
  auto contains = [](const std::vector<config::ListenerConfig>& listeners,
                     const config::ListenerConfig& wanted) {
    std::string address = wanted.address.ToString();
    for (const config::ListenerConfig& listener : listeners) {
      if (listener.address.ToString() == address) {
        return true;
      }
    }
    return false;
  };
  ListenerChanges changes;
  for (const config::ListenerConfig& listener : next) {
    if (!contains(running, listener)) {
      changes.added.push_back(listener);
    }
  }
  for (const config::ListenerConfig& old : running) {
    if (!contains(next, old)) {
      changes.removed.push_back(old.address.ToString());
    }
  }
  return changes;
}

Server::Server(const ConfigPipeline& pipeline, PreparedConfig prepared)
    : pipeline_(pipeline),
      initial_dns_(std::move(prepared.dns)),
      current_(std::move(prepared.snapshot)),
      worker_count_(WorkerCount(current_->config)),
      shared_(std::make_unique<SharedState>()) {
  control_plane_ = std::make_unique<ControlPlane>(dispatcher_, time_source_, current_);
  shared_->outcome_reporter = control_plane_.get();
  admin_backend_ = std::make_unique<ProcessAdminBackend>(current_, *control_plane_, *shared_);
  persister_ = std::make_unique<CachePersister>(dispatcher_, time_source_);
}

Server::~Server() = default;

int Server::Run() {
  if (!Start()) {
    return 1;
  }
  dispatcher_.Run();
  Stop();
  return exit_code_;
}

bool Server::Start() {
  const config::Config& config = current_->config;
  if (config.access_log.enabled) {
    absl::Status opened = access_log_.Open(config.access_log.path);
    if (!opened.ok()) {
      Log(LogLevel::kError, "cannot open access log", {{"error", std::string(opened.message())}});
      return false;
    }
    shared_->access_log = &access_log_;
  }
  LoadCacheSnapshots(*current_);
  signal(SIGPIPE, SIG_IGN);
  sigset_t handled = HandledSignals();
  pthread_sigmask(SIG_BLOCK, &handled, nullptr);
  if (!StartAdmin()) {
    return false;
  }
  StartTimers();
  events_ = std::make_unique<ProcessEvents>(
      dispatcher_, pipeline_.path(), [this](int signal_number) { OnSignal(signal_number); },
      [this] { reload_debounce_->Enable(kReloadDebounce); });
  pthread_sigmask(SIG_UNBLOCK, &handled, nullptr);
  persister_->Follow(*current_);
  StartReloads();
  control_plane_->Start([this] {
    OpenListeners();
    admin_backend_->set_ready(phase_ != Phase::kDraining && exit_code_ == 0);
  });
  return true;
}

bool Server::StartAdmin() {
  const config::AdminConfig& admin = current_->config.admin;
  absl::StatusOr<std::unique_ptr<admin::AdminServer>> started =
      admin::AdminServer::Start(dispatcher_.base(), admin, *admin_backend_);
  if (!started.ok()) {
    Log(LogLevel::kError, "cannot open the admin listener",
        {{"error", std::string(started.status().message())}});
    return false;
  }
  admin_server_ = *std::move(started);
  Log(LogLevel::kInfo, "admin listening", {{"address", admin_server_->address()}});
  if (!admin_server_->loopback_only()) {
    // The admin port has no TLS, and its reads (/metrics, /status, /config) need no token:
    // off loopback it should sit behind a firewall or network policy.
    Log(LogLevel::kWarn,
        "admin listener is reachable from other hosts; its reads need no token and it has no TLS",
        {{"address", admin_server_->address()},
         {"mutating_calls", admin.token_file.empty()
                                ? "refused from other hosts (no admin.token_file)"
                                : "need the bearer token from admin.token_file"}});
  }
  return true;
}

void Server::StartTimers() {
  flush_timer_ = dispatcher_.CreateTimer([this] {
    access_log_.Flush();
    flush_timer_->Enable(kAccessLogFlushInterval);
  });
  flush_timer_->Enable(kAccessLogFlushInterval);
  drain_timer_ = dispatcher_.CreateTimer([this] { PollDrain(); });
  // Session-ticket keys rotate on the main thread; the previous key still opens tickets.
  ticket_rotation_ = dispatcher_.CreateTimer([this] {
    network::TicketKeys::Process().Rotate();
    ticket_rotation_->Enable(network::kTicketKeyRotation);
  });
  ticket_rotation_->Enable(network::kTicketKeyRotation);
}

void Server::StartReloads() {
  reloader_ = std::make_unique<config::ConfigReloader>(
      dispatcher_, [this] { return pipeline_.LoadAndValidate(); },
      [this](config::LoadResult loaded, config::ReloadTrigger trigger) {
        return ApplyLoaded(std::move(loaded), trigger);
      });
  dns_refresher_ = std::make_unique<DnsRefresher>(
      dispatcher_, [this] { OnTrigger(config::ReloadTrigger::kDnsRefresh); });
  dns_refresher_->Watch(current_->config, initial_dns_);
  // POST /reload answers with the result, even while draining.
  admin_backend_->set_reload([this](std::function<void(absl::Status)> done) {
    reloader_->Reload(config::ReloadTrigger::kAdmin, std::move(done));
  });
  reload_debounce_ =
      dispatcher_.CreateTimer([this] { OnTrigger(config::ReloadTrigger::kFileWatch); });
}

void Server::OpenListeners() {
  if (phase_ == Phase::kDraining) {
    return;
  }
  absl::StatusOr<ListenSockets> sockets =
      OpenListenSockets(current_->config.listeners, worker_count_);
  if (!sockets.ok()) {
    Log(LogLevel::kError, "cannot open listener",
        {{"error", std::string(sockets.status().message())}});
    exit_code_ = 1;
    dispatcher_.Exit();
    return;
  }
  // Signals go to the main thread only: workers start with them blocked.
  sigset_t handled = HandledSignals();
  sigset_t previous;
  pthread_sigmask(SIG_BLOCK, &handled, &previous);
  for (uint32_t i = 0; i < worker_count_; ++i) {
    workers_.push_back(std::make_unique<Worker>(static_cast<int>(i), *shared_, current_,
                                                std::move((*sockets)[i])));
    workers_.back()->Start();
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  phase_ = Phase::kServing;
  Log(LogLevel::kInfo, "started", {{"workers", absl::StrCat(worker_count_)}});
}

void Server::OnSignal(int signal_number) {
  switch (signal_number) {
    case SIGTERM:
      StartDrain("SIGTERM");
      break;
    case SIGINT:
      StartDrain("SIGINT");
      break;
    case SIGHUP:
      OnTrigger(config::ReloadTrigger::kSignal);
      break;
  }
}

void Server::OnTrigger(config::ReloadTrigger trigger) {
  if (phase_ == Phase::kDraining) {
    return;
  }
  if (PolicyOf(trigger).reads_file) {
    reloader_->Reload(trigger);
  } else {
    Apply(current_->config, trigger).IgnoreError();
  }
}

// The file was read and validated on the reloader's thread; this runs back on the main thread.
absl::Status Server::ApplyLoaded(config::LoadResult loaded, config::ReloadTrigger trigger) {
  if (loaded.ok()) {
    return Apply(std::move(loaded.config), trigger);
  }
  std::string problems;
  for (const config::ConfigError& error : loaded.errors) {
    Log(LogLevel::kError, "reload rejected; the running configuration stays",
        {{"trigger", config::ReloadTriggerName(trigger)}, {"error", error.ToString()}});
    absl::StrAppend(&problems, problems.empty() ? "" : "; ", error.ToString());
  }
  admin_backend_->CountReload(false);
  return absl::InvalidArgumentError(problems);
}

// Build for `next` (a reloaded file, or new DNS answers), open the listeners it adds, then
// publish. Any error keeps the running configuration.
absl::Status Server::Apply(config::Config next, config::ReloadTrigger trigger) {
  TriggerPolicy policy = PolicyOf(trigger);
  PreparedConfig built = pipeline_.Build(std::move(next), current_.get(), dns_refresher_->results(),
                                         policy.resolves_missing_names);
  if (built.process_settings_kept) {
    Log(LogLevel::kWarn, "workers, admin and access_log changes need a restart; kept as running",
        {{"trigger", config::ReloadTriggerName(trigger)}});
  }
  if (!built.ok()) {
    return Reject(trigger, absl::InvalidArgumentError(built.errors.front().ToString()));
  }
  ListenerChanges changes =
      DiffListeners(current_->config.listeners, built.snapshot->config.listeners);
  absl::StatusOr<ListenSockets> sockets = OpenListenSockets(changes.added, worker_count_);
  if (!sockets.ok()) {
    return Reject(trigger, sockets.status());
  }
  Publish(std::move(built), *std::move(sockets), changes, trigger);
  return absl::OkStatus();
}

absl::Status Server::Reject(config::ReloadTrigger trigger, const absl::Status& error) {
  Log(LogLevel::kError, "reload rejected; the running configuration stays",
      {{"trigger", config::ReloadTriggerName(trigger)}, {"error", std::string(error.message())}});
  admin_backend_->CountReload(false);
  return error;
}

// The new snapshot to every reader: the control plane and admin here, the workers through
// their queues (each adopts it between events; requests in flight keep the one they hold).
void Server::Publish(PreparedConfig built, ListenSockets sockets, const ListenerChanges& changes,
                     config::ReloadTrigger trigger) {
  current_ = std::move(built.snapshot);
  control_plane_->Reload(current_);
  admin_backend_->SetSnapshot(current_);
  for (size_t i = 0; i < workers_.size(); ++i) {
    workers_[i]->UpdateSnapshot(current_, std::move(sockets[i]), changes.removed);
  }
  persister_->Follow(*current_);
  if (PolicyOf(trigger).counts_as_reload) {
    dns_refresher_->Watch(current_->config, built.dns);
    admin_backend_->CountReload(true);
  }
  Log(LogLevel::kInfo, "configuration reloaded",
      {{"trigger", config::ReloadTriggerName(trigger)},
       {"listeners_added", absl::StrCat(changes.added.size())},
       {"listeners_removed", absl::StrCat(changes.removed.size())}});
}

void Server::StartDrain(const char* signal_name) {
  if (phase_ == Phase::kDraining) {
    return;
  }
  phase_ = Phase::kDraining;
  admin_backend_->set_ready(false);  // load balancers in front stop sending first
  drain_deadline_ = absl::Now() + current_->config.limits.drain_timeout;
  Log(LogLevel::kInfo, "draining", {{"signal", signal_name}});
  for (const auto& worker : workers_) {
    worker->Drain();
  }
  drain_timer_->Enable(kDrainPollInterval);
}

void Server::PollDrain() {
  uint64_t open = 0;
  for (const auto& worker : workers_) {
    open += worker->open_connections();
  }
  if (open == 0 || absl::Now() >= drain_deadline_) {
    if (open > 0) {
      Log(LogLevel::kWarn, "drain timeout; closing connections",
          {{"open_connections", absl::StrCat(open)}});
    }
    dispatcher_.Exit();
    return;
  }
  drain_timer_->Enable(kDrainPollInterval);
}

void Server::Stop() {
  for (const auto& worker : workers_) {
    worker->Stop();
  }
  for (const auto& worker : workers_) {
    worker->Join();
  }
  workers_.clear();
  events_.reset();
  persister_->WriteAll();
  access_log_.Flush();
  Log(LogLevel::kInfo, "stopped");
}

}  // namespace confgate::server
