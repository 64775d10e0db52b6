// Connections from one worker to upstream hosts, and the worker's pool of idle keep-alive
// connections. Worker-local: no locking.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "absl/time/time.h"
#include "confgate/common/time_source.h"
#include "confgate/event/dispatcher.h"
#include "confgate/network/tls.h"
#include "confgate/network/transport.h"
#include "confgate/upstream/host.h"

namespace confgate::upstream {

class UpstreamConnection;

// Whoever currently owns the connection (a proxy stream, or the idle pool) gets its events.
class UpstreamConnectionHandler {
 public:
  virtual ~UpstreamConnectionHandler() = default;
  virtual void OnUpstreamConnected(UpstreamConnection& connection) = 0;
  virtual void OnUpstreamReadable(UpstreamConnection& connection) = 0;
  // The output buffer drained (request-body back-pressure).
  virtual void OnUpstreamWritable(UpstreamConnection& connection) = 0;
  // EOF or error; `connect_failed` when the connection never opened.
  virtual void OnUpstreamClosed(UpstreamConnection& connection, bool connect_failed) = 0;
};

class UpstreamConnection final : private network::TransportCallbacks {
 public:
  // Starts a non-blocking connect (`host` must be owned by a shared_ptr); events arrive (deferred,
  // never re-entrantly) at `handler`. With `tls`, the connection speaks TLS and "connected" means
  // the handshake (and the certificate verification) succeeded.
  static std::unique_ptr<UpstreamConnection> Connect(event::Dispatcher& dispatcher, Host& host,
                                                     UpstreamConnectionHandler& handler,
                                                     const network::ClientTls* tls = nullptr);
  ~UpstreamConnection() override;
  UpstreamConnection(const UpstreamConnection&) = delete;
  UpstreamConnection& operator=(const UpstreamConnection&) = delete;

  Host& host() const { return *host_; }
  network::Transport& transport() const { return *transport_; }
  bool connected() const { return connected_; }
  // Requests this connection has carried before the current one; > 0 means it was pooled.
  uint32_t reuse_count() const { return reuse_count_; }
  void set_handler(UpstreamConnectionHandler& handler) { handler_ = &handler; }
  void MarkReused() { ++reuse_count_; }

 private:
  UpstreamConnection(Host& host, UpstreamConnectionHandler& handler);

  // confgate::network::TransportCallbacks
  void OnTransportConnected() override;
  void OnTransportReadable() override { handler_->OnUpstreamReadable(*this); }
  void OnTransportDrained() override { handler_->OnUpstreamWritable(*this); }
  void OnTransportClosed(bool connect_failed) override {
    handler_->OnUpstreamClosed(*this, connect_failed);
  }

  // Shared: a pooled connection outlives the snapshot that held its Host when a reload only
  // re-weights the host (the pool is keyed by HostId, which the reload keeps). One reference
  // count per connect, none per request.
  std::shared_ptr<Host> host_;
  std::unique_ptr<network::Transport> transport_;
  UpstreamConnectionHandler* handler_;
  bool connected_ = false;
  uint32_t reuse_count_ = 0;
};

using UpstreamConnectionPtr = std::unique_ptr<UpstreamConnection>;

// Idle keep-alive connections per host. An idle connection that receives bytes or a close is
// discarded at once (a response nobody asked for means the connection is out of sync). One
// sweep timer per pool, armed for the earliest expiry, closes connections idle too long, so a
// release costs no timer of its own.
class ConnectionPool final : private UpstreamConnectionHandler {
 public:
  ConnectionPool(event::Dispatcher& dispatcher, TimeSource& time_source);
  ~ConnectionPool() override;

  // An idle connection to `host` if one exists, else nullptr.
  UpstreamConnectionPtr TakeIdle(Host& host, UpstreamConnectionHandler& new_handler);
  // Keeps `connection` for reuse, or closes it when the host already has `max_idle` idle ones.
  void Release(UpstreamConnectionPtr connection, uint32_t max_idle, absl::Duration idle_timeout);
  // Closes the connections idle for longer than their idle timeout (the sweep timer calls it).
  void CloseExpired();
  // Closes every idle connection (drain, shutdown).
  void CloseAll();
  // Closes the idle connections to hosts whose HostId is not in `keep` (a reload removed them).
  template <typename HostSet>
  void CloseIdleExcept(const HostSet& keep) {
    for (auto it = idle_.begin(); it != idle_.end();) {
      if (!keep.contains(it->first)) {
        it = idle_.erase(it);
      } else {
        ++it;
      }
    }
  }
  size_t idle_count(const Host& host) const;

 private:
  struct IdleEntry {
    UpstreamConnectionPtr connection;
    MonotonicTime expires_at;
  };
  // Oldest first; reuse takes from the back (most recently used).
  using IdleList = std::vector<IdleEntry>;

  void Remove(UpstreamConnection& connection);
  // Arms the sweep timer for `expires_at` unless it already fires no later.
  void ArmSweep(MonotonicTime expires_at, MonotonicTime now);

  // confgate::upstream::UpstreamConnectionHandler
  void OnUpstreamConnected(UpstreamConnection&) override {}
  void OnUpstreamReadable(UpstreamConnection& connection) override { Remove(connection); }
  void OnUpstreamWritable(UpstreamConnection&) override {}
  void OnUpstreamClosed(UpstreamConnection& connection, bool) override { Remove(connection); }

  event::Dispatcher& dispatcher_;
  TimeSource& time_source_;
  std::unordered_map<HostId, IdleList> idle_;
  event::TimerPtr sweep_timer_;
  MonotonicTime sweep_at_{};  // when the armed sweep timer fires
};

}  // namespace confgate::upstream
