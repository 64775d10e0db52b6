// One data-plane thread: its own event loop, its own SO_REUSEPORT listener sockets, its own
// downstream connections and upstream connection pool.
#pragma once

#include <atomic>
#include <memory>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "confgate/common/recycling.h"
#include "confgate/common/time_source.h"
#include "confgate/event/dispatcher.h"
#include "confgate/event/timer_queue.h"
#include "confgate/http/forwarding.h"
#include "confgate/server/access_log.h"
#include "confgate/server/runtime.h"
#include "confgate/upstream/connection_pool.h"
#include "confgate/upstream/load_balancer.h"

struct evconnlistener;

namespace confgate::server {

class DownstreamConnection;

// Objects passed from exchanges that ended to those that start: an idle connection holds
// none, and a busy one costs no allocation.
template <typename T>
class SpareObjects {
 public:
  // A spare object, or null when there is none.
  std::unique_ptr<T> TakeSpare() { return spare_.Take(); }
  void Return(std::unique_ptr<T> object) { spare_.Keep(object); }  // freed here when full

 private:
  // Enough for the exchanges busy at one moment; beyond that, idle memory wins.
  SpareStack<std::unique_ptr<T>> spare_{256};
};

// Return() only a decoder that may be reused (see RequestDecoder::Reuse,
// ResponseDecoder::Reuse), and never from inside its Feed.
template <typename Decoder, typename Callbacks>
class SpareDecoders : public SpareObjects<Decoder> {
 public:
  std::unique_ptr<Decoder> Take(Callbacks& callbacks, const http::DecoderLimits& limits) {
    std::unique_ptr<Decoder> decoder = this->TakeSpare();
    if (decoder == nullptr) {
      return Decoder::Create(callbacks, limits);
    }
    decoder->Reuse(callbacks, limits);
    return decoder;
  }
};

// State every worker shares; owned by the Server on the main thread.
struct SharedState {
  AccessLog* access_log = nullptr;
  std::atomic<uint64_t> downstream_connections{0};        // open client connections, all workers
  std::atomic<uint64_t> accept_errors{0};                 // EMFILE and friends
  std::atomic<uint64_t> allocation_failures{0};           // connections closed for want of memory
  upstream::OutcomeReporter* outcome_reporter = nullptr;  // the control plane
};

class Worker {
 public:
  // `listen_fds` pairs each listener's configured address with this worker's socket for it.
  Worker(int index, SharedState& shared, RuntimeSnapshotPtr snapshot,
         std::vector<std::pair<std::string, int>> listen_fds);
  ~Worker();

  void Start();
  void Join();
  // Thread-safe: stop accepting and close connections as their exchanges finish.
  void Drain();
  // Thread-safe: leave the event loop (connections still open are closed).
  void Stop();
  uint64_t open_connections() const { return open_connections_.load(); }

  // Used by connections and streams on this worker's thread.
  event::Dispatcher& dispatcher() { return dispatcher_; }
  // Timers of connections and requests.
  event::TimerQueue& timers() { return timers_; }
  upstream::ConnectionPool& pool() { return *pool_; }
  const RuntimeSnapshotPtr& snapshot() const { return snapshot_; }
  // This worker's balancer for `cluster` (built on first use for a cluster of an older
  // snapshot that an in-flight request still uses).
  upstream::LoadBalancer& balancer(const upstream::ClusterSharedPtr& cluster);
  // Whether `host` belongs to the current snapshot (only those are pooled). By id: a host that a
  // reload removed and a later one re-added at the same address is a different host.
  bool IsCurrentHost(const upstream::Host& host) const {
    return current_hosts_.contains(host.id());
  }
  // Thread-safe: a reloaded snapshot, sockets for listeners it adds (one per listener, for this
  // worker) and the addresses of listeners it removes.
  void UpdateSnapshot(RuntimeSnapshotPtr snapshot, std::vector<std::pair<std::string, int>> added,
                      std::vector<std::string> removed);
  SpareDecoders<http::RequestDecoder, http::RequestDecoderCallbacks>& request_decoders() {
    return request_decoders_;
  }
  SpareDecoders<http::ResponseDecoder, http::ResponseDecoderCallbacks>& response_decoders() {
    return response_decoders_;
  }
  // Access-log entries of exchanges in progress; their strings keep their capacity.
  SpareObjects<AccessLogEntry>& log_entries() { return log_entries_; }
  SharedState& shared() { return shared_; }
  http::RequestIdRandom& random() { return random_; }
  TimeSource& time_source() { return time_source_; }
  bool draining() const { return draining_; }
  void RemoveConnection(DownstreamConnection& connection);
  // A connection is closed because an allocation for it failed: counted, and logged at most
  // once a second. Allocates nothing that must succeed.
  void NoteAllocationFailure(const char* where);

 private:
  static void OnAccept(evconnlistener* listener, int fd, struct sockaddr* address, int length,
                       void* arg);
  static void OnAcceptError(evconnlistener* listener, void* arg);
  void DrainOnThread();
  void AddListener(const std::string& address, int fd);
  void AdoptSnapshot(RuntimeSnapshotPtr snapshot);

  int index_;
  SharedState& shared_;
  RuntimeSnapshotPtr snapshot_;

  event::Dispatcher dispatcher_;
  RealTimeSource time_source_;  // before pool_ and timers_, which keep a reference
  event::TimerQueue timers_{dispatcher_, time_source_};
  std::unique_ptr<upstream::ConnectionPool> pool_;
  std::vector<std::pair<std::string, evconnlistener*>> listeners_;
  event::TimerPtr accept_resume_timer_;
  std::unordered_map<DownstreamConnection*, std::unique_ptr<DownstreamConnection>> connections_;
  std::atomic<uint64_t> open_connections_{0};
  http::RequestIdRandom random_;
  SpareDecoders<http::RequestDecoder, http::RequestDecoderCallbacks> request_decoders_;
  SpareDecoders<http::ResponseDecoder, http::ResponseDecoderCallbacks> response_decoders_;
  SpareObjects<AccessLogEntry> log_entries_;
  upstream::SeededRandom balancer_random_;
  std::unordered_map<upstream::ClusterSharedPtr, std::unique_ptr<upstream::LoadBalancer>>
      balancers_;
  absl::flat_hash_set<upstream::HostId> current_hosts_;
  bool draining_ = false;
  absl::Time last_accept_error_log_ = absl::InfinitePast();
  absl::Time last_allocation_failure_log_ = absl::InfinitePast();
  std::thread thread_;
};

}  // namespace confgate::server
