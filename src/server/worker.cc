#include "server/worker.h"

#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "absl/strings/str_cat.h"
#include "confgate/common/log.h"
#include "confgate/network/socket.h"
#include "server/downstream_connection.h"

namespace confgate::server {
namespace {

// How long accepting pauses after an accept error such as EMFILE, so we neither spin nor
// give up on the listener.
constexpr absl::Duration kAcceptPause = absl::Milliseconds(100);

}  // namespace

Worker::Worker(int index, SharedState& shared, RuntimeSnapshotPtr snapshot,
               std::vector<std::pair<std::string, int>> listen_fds)
    : index_(index),
      shared_(shared),
      pool_(std::make_unique<upstream::ConnectionPool>(dispatcher_, time_source_)),
      balancer_random_(absl::Uniform<uint64_t>(random_)) {
  AdoptSnapshot(std::move(snapshot));
  for (const auto& [address, fd] : listen_fds) {
    AddListener(address, fd);
  }
  accept_resume_timer_ = dispatcher_.CreateTimer([this] {
    if (!draining_) {
      for (const auto& [address, listener] : listeners_) {
        evconnlistener_enable(listener);
      }
    }
  });
}

void Worker::AddListener(const std::string& address, int fd) {
  evconnlistener* listener =
      evconnlistener_new(dispatcher_.base(), &Worker::OnAccept, this,
                         LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, /*backlog=*/0, fd);
  evconnlistener_set_error_cb(listener, &Worker::OnAcceptError);
  listeners_.emplace_back(address, listener);
}

void Worker::AdoptSnapshot(RuntimeSnapshotPtr snapshot) {
  snapshot_ = std::move(snapshot);
  balancers_.clear();
  current_hosts_.clear();
  for (const upstream::ClusterSharedPtr& cluster : snapshot_->clusters) {
    balancer(cluster);
    for (const upstream::HostSharedPtr& host : cluster->hosts()) {
      current_hosts_.insert(host->id());
    }
  }
  // Idle connections to hosts the new snapshot dropped are closed; in-flight ones finish.
  pool_->CloseIdleExcept(current_hosts_);
  std::vector<DownstreamConnection*> open;
  for (auto& [raw, connection] : connections_) {
    open.push_back(raw);
  }
  for (DownstreamConnection* connection : open) {
    connection->OnReload(*snapshot_);
  }
}

upstream::LoadBalancer& Worker::balancer(const upstream::ClusterSharedPtr& cluster) {
  std::unique_ptr<upstream::LoadBalancer>& slot = balancers_[cluster];
  if (slot == nullptr) {
    upstream::BalancerParams params{time_source_, balancer_random_, cluster->config().slow_start};
    slot = upstream::CreateLoadBalancer(cluster->config(), cluster->hosts(), params);
  }
  return *slot;
}

void Worker::UpdateSnapshot(RuntimeSnapshotPtr snapshot,
                            std::vector<std::pair<std::string, int>> added,
                            std::vector<std::string> removed) {
  dispatcher_.Post([this, snapshot = std::move(snapshot), added = std::move(added),
                    removed = std::move(removed)]() mutable {
    AdoptSnapshot(std::move(snapshot));
    for (const std::string& address : removed) {
      for (auto it = listeners_.begin(); it != listeners_.end();) {
        if (it->first == address) {
          evconnlistener_free(it->second);
          it = listeners_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (const auto& [address, fd] : added) {
      if (draining_) {
        close(fd);
      } else {
        AddListener(address, fd);
      }
    }
  });
}

Worker::~Worker() {
  connections_.clear();
  // Connections and streams closed as the loop ended still wait in the dispatcher, which is
  // destroyed last; their destructors hand decoders and upstream connections to members that
  // would be gone by then.
  dispatcher_.ClearDeferred();
  pool_.reset();
  for (const auto& [address, listener] : listeners_) {
    evconnlistener_free(listener);
  }
}

void Worker::Start() {
  thread_ = std::thread([this] {
    dispatcher_.Run();
    // Close what is left on this thread, which owns the sockets.
    std::vector<DownstreamConnection*> open;
    for (auto& [raw, connection] : connections_) {
      open.push_back(raw);
    }
    for (DownstreamConnection* connection : open) {
      connection->Close();
    }
    pool_->CloseAll();
  });
}

void Worker::Join() {
  if (thread_.joinable()) {
    thread_.join();
  }
}

void Worker::Drain() {
  dispatcher_.Post([this] { DrainOnThread(); });
}

void Worker::Stop() {
  dispatcher_.Post([this] { dispatcher_.Exit(); });
}

void Worker::DrainOnThread() {
  draining_ = true;
  // Close the sockets, not just stop accepting: new connections are refused at once instead
  // of waiting in a backlog nobody reads.
  for (const auto& [address, listener] : listeners_) {
    evconnlistener_free(listener);
  }
  listeners_.clear();
  pool_->CloseAll();
  std::vector<DownstreamConnection*> open;
  for (auto& [raw, connection] : connections_) {
    open.push_back(raw);
  }
  for (DownstreamConnection* connection : open) {
    connection->Drain();
  }
}

void Worker::OnAccept(evconnlistener* listener, int fd, sockaddr* address, int length, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  uint64_t limit = self->snapshot_->config.limits.max_connections;
  if (self->draining_ ||
      self->shared_.downstream_connections.fetch_add(1, std::memory_order_relaxed) >= limit) {
    if (!self->draining_) {
      self->shared_.downstream_connections.fetch_sub(1, std::memory_order_relaxed);
    }
    close(fd);
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  const network::ServerTls* tls = nullptr;
  for (const auto& [configured, candidate] : self->listeners_) {
    if (candidate == listener) {
      tls = self->snapshot_->ListenerTls(configured);  // the current certificates
    }
  }
  ssl_st* session = tls != nullptr ? tls->NewSession() : nullptr;
  if (tls != nullptr && session == nullptr) {
    // No TLS session (out of memory): the connection closes, never served in the clear.
    self->shared_.downstream_connections.fetch_sub(1, std::memory_order_relaxed);
    close(fd);
    return;
  }
  // The connection owns the socket once it is made (its transport is made last), so a failed
  // allocation closes the socket here before, and by destroying the connection after.
  bool socket_owned = false;
  try {
    std::string client_ip = network::PeerIp(address, static_cast<socklen_t>(length));
    auto connection =
        std::make_unique<DownstreamConnection>(*self, fd, session, std::move(client_ip));
    socket_owned = true;
    DownstreamConnection* raw = connection.get();
    self->connections_.emplace(raw, std::move(connection));
  } catch (const std::bad_alloc&) {
    if (!socket_owned) {
      close(fd);  // (a TLS session not yet taken is lost: memory ran out making its stream)
    }
    self->shared_.downstream_connections.fetch_sub(1, std::memory_order_relaxed);
    self->NoteAllocationFailure("accept");
    return;
  }
  self->open_connections_.fetch_add(1, std::memory_order_relaxed);
}

void Worker::OnAcceptError(evconnlistener* listener, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  int error = errno;
  self->shared_.accept_errors.fetch_add(1, std::memory_order_relaxed);
  // While descriptors stay exhausted this fires every pause; one line a second is enough.
  absl::Time now = self->time_source_.SystemTime();
  if (now - self->last_accept_error_log_ >= absl::Seconds(1)) {
    self->last_accept_error_log_ = now;
    Log(LogLevel::kWarn, "accept failed; pausing accepts",
        {{"worker", absl::StrCat(self->index_)},
         {"error", std::strerror(error)},
         {"pause_ms", absl::StrCat(absl::ToInt64Milliseconds(kAcceptPause))},
         {"errors_total", absl::StrCat(self->shared_.accept_errors.load())}});
  }
  evconnlistener_disable(listener);
  self->accept_resume_timer_->Enable(kAcceptPause);
}

void Worker::RemoveConnection(DownstreamConnection& connection) {
  auto it = connections_.find(&connection);
  if (it == connections_.end()) {
    return;
  }
  std::unique_ptr<DownstreamConnection> owned = std::move(it->second);
  connections_.erase(it);
  shared_.downstream_connections.fetch_sub(1, std::memory_order_relaxed);
  open_connections_.fetch_sub(1, std::memory_order_relaxed);
  dispatcher_.DeferredDelete(std::move(owned));
}

void Worker::NoteAllocationFailure(const char* where) {
  uint64_t total = shared_.allocation_failures.fetch_add(1, std::memory_order_relaxed) + 1;
  absl::Time now = time_source_.SystemTime();
  if (now - last_allocation_failure_log_ < absl::Seconds(1)) {
    return;
  }
  last_allocation_failure_log_ = now;
  try {
    Log(LogLevel::kWarn, "allocation failed; connection closed",
        {{"worker", absl::StrCat(index_)},
         {"where", where},
         {"failures_total", absl::StrCat(total)}});
  } catch (const std::bad_alloc&) {
    // Not even the log line: the counter has it.
  }
}

}  // namespace confgate::server
