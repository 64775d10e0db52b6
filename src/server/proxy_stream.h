// One proxied request: picks a host, sends the request upstream (body streamed as it arrives),
// streams the response back, with back-pressure both ways and the response timeout.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "confgate/cache/store.h"
#include "confgate/event/dispatcher.h"
#include "confgate/event/timer_queue.h"
#include "confgate/http/codec.h"
#include "confgate/router/router.h"
#include "confgate/server/runtime.h"
#include "confgate/upstream/connection_pool.h"
#include "confgate/upstream/outlier.h"

struct evbuffer;

namespace confgate::server {

class DownstreamConnection;
class Worker;

class ProxyStream final : public event::DeferredDeletable,
                          private upstream::UpstreamConnectionHandler,
                          private http::ResponseDecoderCallbacks {
 public:
  ProxyStream(Worker& worker, DownstreamConnection& downstream, RuntimeSnapshotPtr snapshot,
              const router::Route& route, http::RequestHead&& head);
  ~ProxyStream() override;

  // One stream is made and destroyed per request: its memory is recycled through a per-thread
  // list instead of going back to malloc, which serves blocks of this size slowly once many
  // requests are in flight.
  static void* operator new(size_t size);
  static void operator delete(void* memory, size_t size) noexcept;

  // Sends the request head; body bytes follow through OnRequestBody().
  void Start();
  void OnRequestBody(absl::string_view data);
  void OnRequestComplete();
  // The client's output buffer drained: resume reading the upstream response.
  void OnDownstreamDrained();
  // The client went away or the connection is closing: drop the upstream connection. Never
  // throws (it runs in the destructor and when closing for want of memory).
  void Cancel();
  // The id the request carries upstream (empty until the stream started): its X-Request-Id.
  absl::string_view request_id() const;
  const upstream::Cluster& cluster() const { return cluster_; }
  const router::Route& route() const { return route_; }
  // confgate ends a watch (max_hold, drain, a reload that removed its route): a long poll not
  // yet answered gets a JSON 503 with Retry-After, a started chunked stream its last chunk.
  // Does nothing for other requests or once the response is complete.
  void EndWatch(absl::string_view reason);

 private:
  // Why an attempt failed before its response reached the client.
  enum class Failure { kConnect, kReset, kTimeout, kStatus };

  // upstream::UpstreamConnectionHandler
  void OnUpstreamConnected(upstream::UpstreamConnection& connection) override;
  void OnUpstreamReadable(upstream::UpstreamConnection& connection) override;
  void OnUpstreamWritable(upstream::UpstreamConnection& connection) override;
  void OnUpstreamClosed(upstream::UpstreamConnection& connection, bool connect_failed) override;
  void UpstreamClosed(upstream::UpstreamConnection& connection, bool connect_failed);

  // http::ResponseDecoderCallbacks
  void OnResponseHead(http::ResponseHead&& head) override;
  void OnResponseBody(absl::string_view data) override;
  void OnResponseComplete() override;

  // Picks a host (a different one from those tried, where one exists) and sends the request.
  // How a response from the cache is labelled.
  enum class CacheServe { kHit, kCoalesced, kStaleIfError, kReadOnly };

  // Sends the request to `host`, or to one picked now when null.
  void StartAttempt(upstream::Host* host = nullptr);
  upstream::Host* PickHost();
  // Serialises `head` (through the worker's head buffer) onto `out`.
  void WriteHead(evbuffer* out, const http::RequestHead& head);
  void WriteHead(evbuffer* out, const http::ResponseHead& head);
  void AnswerInReadOnlyMode();
  bool ReadOnly() const;
  // Cache lookup for a read on a cached route: a hit, a read-only answer, a coalesced wait, or
  // on to the upstream.
  void BeginCachedRead();
  // A coalesced read's group was promoted and this read leads it: it sends the fetch.
  void OnCoalescedLead();
  void OnCoalescedResponse(cache::CachedResponsePtr response);
  void AnswerCachedReadInReadOnlyMode();
  bool StaleUsable() const;
  void ServeCached(const cache::CachedResponse& response, CacheServe how);
  void ServeStaleAfterFailure();
  void StoreCapturedResponse();
  void CompleteCoalescing(cache::CachedResponsePtr response);
  // Ends the current attempt and reports what it says about the host to the control plane.
  // A failed attempt (by its outcome) is recorded on the host with `reason` (and the status
  // for a status failure) for /status.
  void EndAttempt(bool reusable, upstream::Outcome outcome,
                  upstream::FailureReason reason = upstream::FailureReason::kNone, int status = 0);
  static upstream::Outcome OutcomeOf(Failure failure, int status);
  static upstream::FailureReason ReasonOf(Failure failure);
  // Whether a failed attempt may be tried again on another host (route kind, retries.on,
  // attempts left, kept body, retry budget).
  bool MayRetry(Failure failure, int status) const;
  // Retries when allowed; otherwise answers the client with `status`. Returns true on retry.
  bool RetryOrFail(Failure failure, int status, int fail_status, absl::string_view body);
  void Retry(Failure failure, int status, upstream::Host* next = nullptr);
  void ReadUpstream();
  void FinishResponse();
  void FailBeforeResponse(int status, absl::string_view body);
  void OnTimeout();
  // timeouts.total ran out before a response was chosen: no further try.
  void OnTotalTimeout();
  absl::Duration ResponseTimeout() const;
  // A watch's limits, from the request and the route's watch.max_hold.
  void StartWatchHold();
  // Arms the timer for the response (for a watch: what is left of its hold, if any).
  void ArmResponseTimer();
  absl::Duration TotalTimeout() const;
  std::optional<uint64_t> HashKey() const;

  Worker& worker_;
  DownstreamConnection& downstream_;
  RuntimeSnapshotPtr snapshot_;
  const router::Route& route_;
  const upstream::Cluster& cluster_;
  router::RequestKind kind_;
  http::RequestHead head_;
  std::string method_;
  bool request_id_set_ = false;  // head_ carries the request id
  std::optional<uint64_t> hash_;

  upstream::UpstreamConnectionPtr connection_;
  upstream::Host* host_ = nullptr;
  absl::InlinedVector<const upstream::Host*, 4> tried_;
  uint32_t retries_left_ = 0;
  bool attempt_active_ = false;  // host_ counts this request as in flight
  bool attempt_is_retry_ = false;
  int pending_status_ = 0;
  int response_status_ = 0;
  bool stale_retry_used_ = false;
  std::unique_ptr<http::ResponseDecoder> decoder_;
  event::QueuedTimer timer_;
  absl::Duration response_timeout_;
  // A watch: when it started, and how long it may wait for its response (nullopt = no limit).
  MonotonicTime watch_started_at_{};
  std::optional<absl::Duration> watch_wait_limit_;
  bool watch_wait_is_max_hold_ = false;  // the limit is max_hold, not the client's duration
  event::QueuedTimer total_timer_;       // timeouts.total, armed with the first try (not watches)
  bool total_armed_ = false;
  bool total_expired_ = false;
  upstream::Host* retry_host_ = nullptr;  // picked when a status answer was to be retried

  // The request body as received so far, kept for a retry while it stays small.
  std::string body_copy_;
  bool body_too_large_to_retry_ = false;

  bool request_has_body_ = false;
  bool request_complete_ = false;
  bool response_started_ = false;  // head written to the client
  bool response_complete_ = false;
  bool upstream_keep_alive_ = false;  // the response head allows another request after it
  bool decoder_reusable_ = false;     // the response ended cleanly on a kept-alive connection
  bool response_bytes_seen_ = false;
  bool retry_pending_ = false;  // a retryable status arrived inside the decoder callback
  bool chunked_to_client_ = false;
  bool close_delimited_to_client_ = false;
  bool upstream_read_paused_ = false;
  bool finished_ = false;
  bool in_read_ = false;

  // The route's cache, for reads on a cached route.
  cache::ResponseCache* cache_ = nullptr;
  std::string primary_key_;
  uint64_t cache_generation_ = 0;    // the cache's Generation() before the fetch went upstream
  cache::CachedResponsePtr cached_;  // what the lookup found, fresh or not
  bool awaiting_body_for_key_ = false;
  bool coalesce_leader_ = false;
  bool waiting_for_leader_ = false;
  bool stale_pending_ = false;  // a 5xx arrived and a stale copy will answer instead
  bool capturing_ = false;      // keeping the response body for the cache or waiters
  bool capture_storable_ = false;
  http::ResponseHead capture_head_;
  std::string capture_;
  std::shared_ptr<bool> alive_;  // made for a coalescing waiter, whose posted callback checks it
};

}  // namespace confgate::server
