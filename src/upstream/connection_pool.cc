#include "confgate/upstream/connection_pool.h"

#include <event2/buffer.h>
#include <event2/event.h>

#include <algorithm>
#include <new>
#include <optional>

namespace confgate::upstream {

UpstreamConnectionPtr UpstreamConnection::Connect(event::Dispatcher& dispatcher, Host& host,
                                                  UpstreamConnectionHandler& handler,
                                                  const network::ClientTls* tls) {
  UpstreamConnectionPtr connection(new UpstreamConnection(host, handler));
  auto length = static_cast<socklen_t>(host.sockaddr_len());
  connection->transport_ =
      tls != nullptr
          ? network::Transport::ConnectTls(dispatcher, host.sockaddr_ptr(), length,
                                           tls->NewSession(host.host_name()), *connection)
          : network::Transport::Connect(dispatcher, host.sockaddr_ptr(), length, *connection);
  return connection;
}

UpstreamConnection::UpstreamConnection(Host& host, UpstreamConnectionHandler& handler)
    : host_(host.shared_from_this()), handler_(&handler) {}

UpstreamConnection::~UpstreamConnection() = default;

void UpstreamConnection::OnTransportConnected() {
  connected_ = true;
  handler_->OnUpstreamConnected(*this);
}

ConnectionPool::ConnectionPool(event::Dispatcher& dispatcher, TimeSource& time_source)
    : dispatcher_(dispatcher),
      time_source_(time_source),
      sweep_timer_(dispatcher.CreateTimer([this] { CloseExpired(); })) {}

ConnectionPool::~ConnectionPool() { CloseAll(); }

UpstreamConnectionPtr ConnectionPool::TakeIdle(Host& host, UpstreamConnectionHandler& new_handler) {
  auto it = idle_.find(host.id());
  if (it == idle_.end() || it->second.empty()) {
    return nullptr;
  }
  // Most recently used first: it is the least likely to have been closed by the upstream.
  UpstreamConnectionPtr connection = std::move(it->second.back().connection);
  it->second.pop_back();
  connection->set_handler(new_handler);
  connection->MarkReused();
  return connection;
}

void ConnectionPool::Release(UpstreamConnectionPtr connection, uint32_t max_idle,
                             absl::Duration idle_timeout) {
  IdleList& list = idle_[connection->host().id()];
  if (list.size() >= max_idle) {
    return;  // closed by the unique_ptr
  }
  connection->set_handler(*this);
  connection->transport().EnableReading();
  MonotonicTime now = time_source_.Monotonic();
  MonotonicTime expires_at = now + absl::ToChronoNanoseconds(idle_timeout);
  list.push_back(IdleEntry{std::move(connection), expires_at});
  ArmSweep(expires_at, now);
}

void ConnectionPool::ArmSweep(MonotonicTime expires_at, MonotonicTime now) {
  if (sweep_timer_->enabled() && sweep_at_ <= expires_at) {
    return;
  }
  sweep_at_ = expires_at;
  sweep_timer_->Enable(absl::FromChrono(std::max(expires_at - now, MonotonicTime::duration{})));
}

void ConnectionPool::CloseExpired() {
  MonotonicTime now = time_source_.Monotonic();
  std::optional<MonotonicTime> next;
  for (auto& [host, list] : idle_) {
    // Not necessarily in expiry order: a reload may have shortened the idle timeout.
    std::erase_if(list, [now](const IdleEntry& entry) { return entry.expires_at <= now; });
    for (const IdleEntry& entry : list) {
      next = next ? std::min(*next, entry.expires_at) : entry.expires_at;
    }
  }
  sweep_timer_->Disable();
  if (next) {
    ArmSweep(*next, now);
  }
}

size_t ConnectionPool::idle_count(const Host& host) const {
  auto it = idle_.find(host.id());
  return it == idle_.end() ? 0 : it->second.size();
}

void ConnectionPool::Remove(UpstreamConnection& connection) {
  auto it = idle_.find(connection.host().id());
  if (it == idle_.end()) {
    return;
  }
  IdleList& list = it->second;
  for (auto entry = list.begin(); entry != list.end(); ++entry) {
    if (entry->connection.get() == &connection) {
      // The connection's own event is the caller; destroy it after the callback stack unwinds.
      // Without the memory for that, now: its transport allows it in its callbacks.
      struct Graveyard : event::DeferredDeletable {
        UpstreamConnectionPtr connection;
      };
      std::unique_ptr<Graveyard> grave(new (std::nothrow) Graveyard);
      UpstreamConnectionPtr closing = std::move(entry->connection);
      list.erase(entry);
      if (grave != nullptr) {
        grave->connection = std::move(closing);
        dispatcher_.DeferredDelete(std::move(grave));
      }
      return;
    }
  }
}

void ConnectionPool::CloseAll() { idle_.clear(); }

}  // namespace confgate::upstream
