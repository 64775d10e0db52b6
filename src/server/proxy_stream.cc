#include "server/proxy_stream.h"

#include <event2/buffer.h>
#include <event2/event.h>

#include <algorithm>
#include <new>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "confgate/cache/policy.h"
#include "confgate/common/log.h"
#include "confgate/common/recycling.h"
#include "confgate/http/forwarding.h"
#include "confgate/http/hash_key.h"
#include "confgate/mode/mode.h"
#include "confgate/upstream/load_balancer.h"
#include "server/downstream_connection.h"
#include "server/worker.h"

namespace confgate::server {
namespace {

// A watch may be held this much longer than the client asked for before we call it late.
constexpr absl::Duration kWatchMargin = absl::Seconds(5);
// Request bodies up to this size are kept so the request can be retried on another host.
constexpr size_t kMaxRetryBodyBytes = 64 * 1024;
constexpr absl::string_view kVia = "1.1 confgate";
// What a client is told to wait before trying again while an upstream is read-only.
constexpr int kReadOnlyRetryAfterSeconds = 5;
// What a client whose watch confgate ended (max_hold, drain) is told to wait: it may watch again
// at once, on this proxy or another.
constexpr int kWatchEndedRetryAfterSeconds = 1;

// Appends body bytes, framed as one chunk when the body is sent chunked.
void AddBodyPiece(evbuffer* out, absl::string_view data, bool chunked) {
  if (chunked) {
    std::string chunk_head = absl::StrCat(absl::Hex(data.size()), "\r\n");
    evbuffer_add(out, chunk_head.data(), chunk_head.size());
    evbuffer_add(out, data.data(), data.size());
    evbuffer_add(out, "\r\n", 2);
  } else {
    evbuffer_add(out, data.data(), data.size());
  }
}

// The one body shape of every answer confgate makes itself for an upstream (read-only mode,
// failed connects, timeouts): clients parse one format. The upstream's name is the operator's
// to choose (any YAML key): escaped like any string.
std::string UpstreamErrorBody(absl::string_view error, const std::string& upstream,
                              absl::string_view message) {
  std::string body = absl::StrCat("{\"error\":\"", error, "\",\"upstream\":");
  AppendJsonString(upstream, body);
  absl::StrAppend(&body, ",\"message\":");
  AppendJsonString(message, body);
  body.append("}\n");
  return body;
}

struct DeleteBlock {
  void operator()(void* block) const { ::operator delete(block); }
};

// Memory of destroyed streams, for the next ones made on this thread. Enough for the requests
// in flight at one moment; beyond that, idle memory wins.
struct StreamMemory : SpareStack<void*, DeleteBlock> {
  StreamMemory() : SpareStack(256) {}
};

const char* FailureName(int failure) {
  static const char* const kNames[] = {"connect_failure", "reset", "timeout", "status"};
  return kNames[failure];
}

// Serializes a head for the output buffer. A usual head is written on the stack and copied in
// with evbuffer_add() (cheaper than reserving and committing space in the buffer); a large one
// straight into the buffer's free space, in one contiguous piece. Either fails only when
// memory does.
template <typename Head>
void SerializeToBuffer(evbuffer* out, const Head& head) {
  size_t size = http::SerializedSize(head);
  constexpr size_t kOnStack = 2048;
  if (size <= kOnStack) {
    char text[kOnStack];
    http::SerializeInto(head, text);
    evbuffer_add(out, text, size);
    return;
  }
  evbuffer_iovec space;
  if (evbuffer_reserve_space(out, static_cast<ev_ssize_t>(size), &space, 1) != 1) {
    return;
  }
  http::SerializeInto(head, static_cast<char*>(space.iov_base));
  space.iov_len = size;
  evbuffer_commit_space(out, &space, 1);
}

}  // namespace

void* ProxyStream::operator new(size_t size) {
  StreamMemory* memory =
      kRecycleMemory && size == sizeof(ProxyStream) ? PerThread<StreamMemory>::Get() : nullptr;
  void* block = memory != nullptr ? memory->Take() : nullptr;
  return block != nullptr ? block : ::operator new(size);
}

void ProxyStream::operator delete(void* block, size_t size) noexcept {
  StreamMemory* memory =
      kRecycleMemory && size == sizeof(ProxyStream) ? PerThread<StreamMemory>::Get() : nullptr;
  if (memory == nullptr || !memory->Keep(block)) {
    ::operator delete(block);
  }
}

ProxyStream::ProxyStream(Worker& worker, DownstreamConnection& downstream,
                         RuntimeSnapshotPtr snapshot, const router::Route& route,
                         http::RequestHead&& head)
    : worker_(worker),
      downstream_(downstream),
      snapshot_(std::move(snapshot)),
      route_(route),
      cluster_(*snapshot_->clusters[route.upstream_index]),
      kind_(route.KindFor(head.method)),
      head_(std::move(head)),
      method_(head_.method),
      timer_(worker.timers(), [this] { GuardAllocation(downstream_, [this] { OnTimeout(); }); }),
      total_timer_(worker.timers(),
                   [this] { GuardAllocation(downstream_, [this] { OnTotalTimeout(); }); }) {
  cluster_.active_requests().fetch_add(1, std::memory_order_relaxed);
  if (kind_ == router::RequestKind::kRead && route_.cache.has_value()) {
    cache_ = snapshot_->route_caches[route_.index].get();
  }
  if (kind_ == router::RequestKind::kWatch) {
    cluster_.watches_active().fetch_add(1, std::memory_order_relaxed);
  }
}

ProxyStream::~ProxyStream() {
  Cancel();
  if (decoder_reusable_) {
    worker_.response_decoders().Return(std::move(decoder_));
  }
  if (kind_ == router::RequestKind::kWatch) {
    cluster_.watches_active().fetch_sub(1, std::memory_order_relaxed);
  }
  cluster_.active_requests().fetch_sub(1, std::memory_order_relaxed);
}

absl::Duration ProxyStream::ResponseTimeout() const {
  return route_.response_timeout.value_or(cluster_.config().timeouts.response);
}

void ProxyStream::StartWatchHold() {
  watch_started_at_ = worker_.time_source().Monotonic();
  // A long poll with a duration (Consul wait=, Nacos Long-Pulling-Timeout in ms) waits for its
  // response that long plus a margin; one without (etcd's wait=true, a v3 watch stream) as long
  // as the client wants. max_hold, when set, bounds both, and a started stream too.
  std::optional<absl::Duration> wait;
  if (std::optional<absl::string_view> value = router::QueryParam(head_.query(), "wait")) {
    absl::Duration parsed;
    if (absl::ParseDuration(*value, &parsed) && parsed > absl::ZeroDuration()) {
      wait = parsed;
    }
  } else if (const absl::string_view* header = head_.headers.Get("long-pulling-timeout")) {
    int64_t millis = 0;
    if (absl::SimpleAtoi(*header, &millis) && millis > 0) {
      wait = absl::Milliseconds(millis);
    }
  }
  if (wait.has_value()) {
    watch_wait_limit_ = *wait + kWatchMargin;
  }
  absl::Duration max_hold = route_.watch.max_hold;
  if (max_hold > absl::ZeroDuration() &&
      (!watch_wait_limit_.has_value() || max_hold <= *watch_wait_limit_)) {
    watch_wait_limit_ = max_hold;
    watch_wait_is_max_hold_ = true;
  }
}

void ProxyStream::ArmResponseTimer() {
  if (kind_ != router::RequestKind::kWatch) {
    timer_.Enable(response_timeout_);
    return;
  }
  // A watch's limit counts from its start, not from its last silence.
  std::optional<absl::Duration> limit = watch_wait_limit_;
  if (response_started_) {
    limit.reset();
    if (route_.watch.max_hold > absl::ZeroDuration()) {
      limit = route_.watch.max_hold;
    }
  }
  if (!limit.has_value()) {
    timer_.Disable();
    return;
  }
  absl::Duration held = absl::FromChrono(worker_.time_source().Monotonic() - watch_started_at_);
  // Whole seconds: watches that share a duration share one timer list (event::TimerQueue keeps
  // a list per duration).
  timer_.Enable(absl::Ceil(std::max(*limit - held, absl::ZeroDuration()), absl::Seconds(1)));
}

absl::Duration ProxyStream::TotalTimeout() const {
  const config::UpstreamTimeouts& timeouts = cluster_.config().timeouts;
  return route_.total_timeout.value_or(
      timeouts.total.value_or(route_.response_timeout.value_or(timeouts.response)));
}

std::optional<uint64_t> ProxyStream::HashKey() const {
  const config::HashKeySpec& spec = cluster_.config().hash_key;
  if (spec.empty()) {
    return std::nullopt;
  }
  std::optional<std::string> key = http::ExtractHashKey(spec, head_, downstream_.client_ip());
  if (!key.has_value()) {
    return std::nullopt;
  }
  return upstream::StableHash(*key);
}

absl::string_view ProxyStream::request_id() const {
  const absl::string_view* id =
      request_id_set_ ? head_.headers.Get(http::FieldId::kXRequestId) : nullptr;
  return id != nullptr ? *id : absl::string_view();
}

void ProxyStream::Start() {
  request_has_body_ = head_.framing != http::BodyFraming::kNone;
  response_timeout_ = ResponseTimeout();
  if (kind_ == router::RequestKind::kWatch) {
    StartWatchHold();
  }
  retries_left_ = cluster_.config().retries.attempts;
  hash_ = HashKey();
  // Only HTTP/1.0 requests may come without Host; the upstream gets the address they reached.
  std::string authority;
  if (head_.version_minor == 0 && head_.headers.Get(http::FieldId::kHost) == nullptr) {
    authority = downstream_.local_authority();
  }
  http::ForwardingContext context{downstream_.client_ip(), downstream_.tls() ? "https" : "http",
                                  kVia, authority};
  http::PrepareUpstreamRequest(head_, context, worker_.random());
  request_id_set_ = true;
  http::SetFramingHeader(head_.headers, head_.framing, head_.content_length);
  if (cache_ != nullptr) {
    if (request_has_body_) {
      awaiting_body_for_key_ = true;  // a POST read's body joins the key
      return;
    }
    BeginCachedRead();
    return;
  }
  if (ReadOnly()) {
    AnswerInReadOnlyMode();
    return;
  }
  StartAttempt();
}

bool ProxyStream::ReadOnly() const {
  return cluster_.mode().load(std::memory_order_relaxed) ==
         static_cast<int>(mode::UpstreamMode::kReadOnly);
}

void ProxyStream::BeginCachedRead() {
  const config::CacheConfig& config = *route_.cache;
  if (request_has_body_ && body_too_large_to_retry_) {
    cache_->stats().bypass.fetch_add(1, std::memory_order_relaxed);
    cache_ = nullptr;  // too large to key on: an ordinary read
    if (ReadOnly()) {
      AnswerInReadOnlyMode();
    } else {
      StartAttempt();
    }
    return;
  }
  primary_key_ = cache::PrimaryKey(head_, config, body_copy_);
  // Before anything goes upstream: a write answered meanwhile makes this fetch too old to keep.
  cache_generation_ = cache_->Generation(primary_key_);
  cached_ = cache_->Lookup(primary_key_, [this](const std::vector<std::string>& names) {
    return cache::VaryKey(head_, names);
  });
  absl::Time now = worker_.time_source().SystemTime();
  if (ReadOnly()) {
    AnswerCachedReadInReadOnlyMode();
    return;
  }
  bool client_allows = cache::RequestAllowsCachedAnswer(head_);
  if (cached_ != nullptr && client_allows && cached_->Fresh(now)) {
    cache_->stats().hits.fetch_add(1, std::memory_order_relaxed);
    ServeCached(*cached_, CacheServe::kHit);
    return;
  }
  (client_allows ? cache_->stats().misses : cache_->stats().bypass)
      .fetch_add(1, std::memory_order_relaxed);
  if (config.coalesce && client_allows && method_ != "HEAD") {
    event::Dispatcher* dispatcher = &worker_.dispatcher();
    if (alive_ == nullptr) {
      alive_ = std::make_shared<bool>(true);
    }
    std::weak_ptr<bool> alive = alive_;
    // Weak: the waiter is kept inside the cache it points to.
    std::weak_ptr<cache::ResponseCache> cache = snapshot_->route_caches[route_.index];
    bool leader = cache_->coalescer().JoinOrLead(
        primary_key_, [dispatcher, alive, cache, key = primary_key_, this](
                          bool lead, cache::CachedResponsePtr response) {
          dispatcher->Post([alive, cache, key, this, lead, response] {
            if (!alive.expired()) {
              GuardAllocation(downstream_, [this, lead, &response] {
                lead ? OnCoalescedLead() : OnCoalescedResponse(response);
              });
            } else if (std::shared_ptr<cache::ResponseCache> owner = cache.lock();
                       lead && owner != nullptr) {
              owner->coalescer().Resign(key);  // gone: another reader of its group leads
            }
          });
        });
    if (!leader) {
      cache_->stats().coalesced.fetch_add(1, std::memory_order_relaxed);
      waiting_for_leader_ = true;
      timer_.Enable(response_timeout_);  // a waiter waits no longer than the route allows
      return;
    }
    coalesce_leader_ = true;
  }
  StartAttempt();
}

void ProxyStream::OnCoalescedLead() {
  if (finished_ || !waiting_for_leader_) {
    cache_->coalescer().Resign(primary_key_);  // answered already (its wait timed out)
    return;
  }
  waiting_for_leader_ = false;
  timer_.Disable();
  coalesce_leader_ = true;
  if (ReadOnly()) {
    // The upstream went read-only while this read queued: it answers as a read-only read
    // would, and its group tries again.
    coalesce_leader_ = false;
    cache_->coalescer().Resign(primary_key_);
    AnswerCachedReadInReadOnlyMode();
    return;
  }
  // The fetch it queued behind may have stored a fresh copy: as good as a hit now.
  cached_ = cache_->Lookup(primary_key_, [this](const std::vector<std::string>& names) {
    return cache::VaryKey(head_, names);
  });
  if (cached_ != nullptr && cached_->Fresh(worker_.time_source().SystemTime())) {
    cache_->stats().hits.fetch_add(1, std::memory_order_relaxed);
    CompleteCoalescing(cached_);
    ServeCached(*cached_, CacheServe::kHit);
    return;
  }
  StartAttempt();
}

void ProxyStream::AnswerCachedReadInReadOnlyMode() {
  if (cached_ != nullptr &&
      cached_->Age(worker_.time_source().SystemTime()) <= route_.cache->max_stale) {
    cache_->stats().stale.fetch_add(1, std::memory_order_relaxed);
    ServeCached(*cached_, CacheServe::kReadOnly);
  } else {
    cache_->stats().misses.fetch_add(1, std::memory_order_relaxed);
    AnswerInReadOnlyMode();
  }
}

void ProxyStream::OnCoalescedResponse(cache::CachedResponsePtr response) {
  if (finished_ || !waiting_for_leader_) {
    return;
  }
  waiting_for_leader_ = false;
  timer_.Disable();
  if (response == nullptr) {
    // The leader's fetch failed: a stale copy if there is one, else the error.
    if (StaleUsable()) {
      ServeCached(*cached_, CacheServe::kStaleIfError);
    } else {
      FailBeforeResponse(502, "upstream fetch failed");
    }
    return;
  }
  // The leader keyed on the primary key only. A response that varies on request headers is
  // looked up again with this request's values, and fetched anew when that finds nothing.
  http::ResponseHead probe;
  probe.headers = response->headers;
  if (!cache::VaryNames(probe).empty()) {
    cache::CachedResponsePtr own = cache_->Lookup(
        primary_key_,
        [this](const std::vector<std::string>& names) { return cache::VaryKey(head_, names); });
    if (own == nullptr) {
      StartAttempt();
      return;
    }
    response = std::move(own);
  }
  ServeCached(*response, CacheServe::kCoalesced);
}

bool ProxyStream::StaleUsable() const {
  return cache_ != nullptr && cached_ != nullptr &&
         cached_->Age(worker_.time_source().SystemTime()) <= route_.cache->max_stale;
}

void ProxyStream::ServeCached(const cache::CachedResponse& response, CacheServe how) {
  absl::Time now = worker_.time_source().SystemTime();
  http::ResponseHead out;
  out.status = response.status;
  bool not_modified = cache::MatchesConditional(head_, response);
  if (not_modified) {
    out.status = 304;
  }
  cache::AddServedFields(response, not_modified, out.headers);
  out.headers.Set(http::FieldId::kAge, "Age", cache::AgeValue(response.Age(now)));
  bool stale = !response.Fresh(now);
  switch (how) {
    case CacheServe::kHit:
      out.headers.Set("Cache-Status", stale ? "confgate; hit; fwd=stale" : "confgate; hit");
      break;
    case CacheServe::kCoalesced:
      // Fetched for this request too, just not by it (RFC 9211's "collapsed"): not a copy.
      out.headers.Set("Cache-Status", "confgate; fwd=miss; collapsed");
      break;
    case CacheServe::kStaleIfError:
    case CacheServe::kReadOnly:
      out.headers.Set("Cache-Status", "confgate; hit; fwd=stale");
      out.headers.Set("X-Confgate-Mode",
                      how == CacheServe::kReadOnly
                          ? "read-only"
                          : mode::UpstreamModeName(static_cast<mode::UpstreamMode>(
                                cluster_.mode().load(std::memory_order_relaxed))));
      break;
  }
  out.headers.Set(http::FieldId::kVia, "Via", kVia);
  bool send_body = !not_modified && method_ != "HEAD";
  if (!not_modified) {
    out.headers.Set(http::FieldId::kContentLength, "Content-Length",
                    absl::StrCat(response.body.size()));
  }
  if (!downstream_.keep_alive_after_response()) {
    out.headers.Set(http::FieldId::kConnection, "Connection", "close");
  } else if (downstream_.request_version_minor() == 0) {
    out.headers.Set(http::FieldId::kConnection, "Connection", "keep-alive");
  }
  WriteHead(downstream_.output(), out);
  if (send_body) {
    evbuffer_add(downstream_.output(), response.body.data(), response.body.size());
    downstream_.AddResponseBodyBytes(response.body.size());
  }
  finished_ = true;
  timer_.Disable();
  downstream_.SetUpstreamForLog(cluster_.name(), "cache");
  response_started_ = true;
  downstream_.OnResponseStarted(out.status);
  downstream_.OnResponseComplete(false);
}

void ProxyStream::AnswerInReadOnlyMode() {
  // Every replica is down (or an operator said so): answer at once, never queue or replay.
  // Reads are served from the cache once it exists; until then a read is a cache miss.
  std::string message;
  const char* error = "read_only";
  switch (kind_) {
    case router::RequestKind::kRead:
      error = "no_cached_copy";
      message = "every replica of this upstream is down and no cached copy exists";
      break;
    case router::RequestKind::kWatch:
      message = "every replica of this upstream is down; watches resume when one is back";
      break;
    case router::RequestKind::kWrite:
      message = "every replica of this upstream is down; writes are refused, not queued";
      break;
  }
  std::string body = UpstreamErrorBody(error, cluster_.name(), message);
  finished_ = true;
  downstream_.SetUpstreamForLog(cluster_.name(), "");
  downstream_.SendLocalReply(503, body, /*close_after=*/false, "application/json",
                             absl::StrCat("Retry-After: ", kReadOnlyRetryAfterSeconds,
                                          "\r\nX-Confgate-Mode: read-only\r\n"));
}

void ProxyStream::WriteHead(evbuffer* out, const http::RequestHead& head) {
  SerializeToBuffer(out, head);
}

void ProxyStream::WriteHead(evbuffer* out, const http::ResponseHead& head) {
  SerializeToBuffer(out, head);
}

upstream::Host* ProxyStream::PickHost() {
  upstream::Host* host = nullptr;
  absl::InlinedVector<const upstream::Host*, 4> skipped = tried_;
  // A half-open host takes one trial request: whoever claims it first sends it; the others
  // pick again. Bounded: each round removes one host.
  for (size_t round = 0; round <= cluster_.hosts().size(); ++round) {
    upstream::PickContext pick{skipped, hash_};
    host = worker_.balancer(snapshot_->clusters[route_.upstream_index]).ChooseHost(pick);
    if (host == nullptr || !host->state().trial_open() || host->state().ClaimTrial()) {
      break;
    }
    skipped.push_back(host);
    host = nullptr;
  }
  return host;
}

void ProxyStream::StartAttempt(upstream::Host* host) {
  if (!total_armed_ && kind_ != router::RequestKind::kWatch) {
    total_armed_ = true;
    total_timer_.Enable(TotalTimeout());
  }
  if (host == nullptr) {
    host = PickHost();
  }
  if (host == nullptr) {
    FailBeforeResponse(503, "no upstream host available");
    return;
  }
  host_ = host;
  attempt_active_ = true;
  tried_.push_back(host_);
  host_->state().active_requests().fetch_add(1, std::memory_order_relaxed);
  if (kind_ == router::RequestKind::kWatch) {
    host_->state().active_watches().fetch_add(1, std::memory_order_relaxed);
  }
  downstream_.SetUpstreamForLog(cluster_.name(), host_->address());
  response_bytes_seen_ = false;
  connection_ = worker_.pool().TakeIdle(*host_, *this);
  if (connection_ == nullptr) {
    connection_ = upstream::UpstreamConnection::Connect(
        worker_.dispatcher(), *host_, *this, snapshot_->cluster_tls[route_.upstream_index].get());
    timer_.Enable(cluster_.config().timeouts.connect);
  } else {
    ArmResponseTimer();
  }
  http::DecoderLimits limits;
  limits.max_header_bytes = 64 * 1024;
  decoder_ = worker_.response_decoders().Take(*this, limits);
  decoder_->ExpectResponse(method_);
  evbuffer* out = connection_->transport().output();
  WriteHead(out, head_);  // serialised per attempt: head_ does not change after Start()
  bool chunked = head_.framing == http::BodyFraming::kChunked;
  if (!body_copy_.empty()) {
    AddBodyPiece(out, body_copy_, chunked);
  }
  if (request_complete_ && chunked) {
    evbuffer_add(out, http::kLastChunk.data(), http::kLastChunk.size());
  }
}

upstream::Outcome ProxyStream::OutcomeOf(Failure failure, int status) {
  if (failure == Failure::kStatus) {
    if (status == 502 || status == 503 || status == 504) {
      return upstream::Outcome::kGatewayFailure;
    }
    return status >= 500 ? upstream::Outcome::kServerError : upstream::Outcome::kSuccess;
  }
  return upstream::Outcome::kGatewayFailure;
}

upstream::FailureReason ProxyStream::ReasonOf(Failure failure) {
  switch (failure) {
    case Failure::kConnect:
      return upstream::FailureReason::kConnect;
    case Failure::kReset:
      return upstream::FailureReason::kReset;
    case Failure::kTimeout:
      return upstream::FailureReason::kTimeout;
    case Failure::kStatus:
      break;
  }
  return upstream::FailureReason::kStatus;
}

void ProxyStream::EndAttempt(bool reusable, upstream::Outcome outcome,
                             upstream::FailureReason reason, int status) {
  if (attempt_active_) {
    attempt_active_ = false;
    host_->state().outcomes()[static_cast<size_t>(outcome)].fetch_add(1, std::memory_order_relaxed);
    if (outcome == upstream::Outcome::kServerError ||
        outcome == upstream::Outcome::kGatewayFailure) {
      host_->state().RecordFailure(reason, status, worker_.time_source().SystemTime());
    }
    host_->state().active_requests().fetch_sub(1, std::memory_order_relaxed);
    if (kind_ == router::RequestKind::kWatch) {
      host_->state().active_watches().fetch_sub(1, std::memory_order_relaxed);
    }
    if (attempt_is_retry_) {
      cluster_.active_retries().fetch_sub(1, std::memory_order_relaxed);
      attempt_is_retry_ = false;
    }
    // Last: the report may allocate (and so throw) without leaving the counts wrong.
    if (worker_.shared().outcome_reporter != nullptr) {
      worker_.shared().outcome_reporter->Report(*host_, outcome);
    }
  }
  timer_.Disable();
  if (connection_ == nullptr) {
    return;
  }
  if (reusable && !worker_.draining() && worker_.IsCurrentHost(connection_->host())) {
    const config::KeepaliveConfig& keepalive = cluster_.config().keepalive;
    worker_.pool().Release(std::move(connection_), keepalive.max_idle_per_worker,
                           keepalive.idle_timeout);
  } else {
    // Destroyed after this callback stack: libevent may still be inside its callback.
    struct ConnectionHolder : event::DeferredDeletable {
      upstream::UpstreamConnectionPtr connection;
    };
    connection_->transport().Silence();
    std::unique_ptr<ConnectionHolder> holder(new (std::nothrow) ConnectionHolder);
    if (holder == nullptr) {
      connection_.reset();  // out of memory: destroyed now, which its transport allows
      return;
    }
    holder->connection = std::move(connection_);
    worker_.dispatcher().DeferredDelete(std::move(holder));
  }
}

bool ProxyStream::MayRetry(Failure failure, int status) const {
  if (response_started_ || finished_ || total_expired_) {
    return false;
  }
  // Writes and watches go again only when the request never left; reads on any listed cause.
  if (failure != Failure::kConnect && kind_ != router::RequestKind::kRead) {
    return false;
  }
  if (request_has_body_ && body_too_large_to_retry_) {
    return false;
  }
  // retries.on as parsed by the config: one bit test.
  const config::RetryOn& on = cluster_.config().retries.on;
  using Condition = config::RetryOn::Condition;
  bool listed = failure == Failure::kStatus    ? on.HasStatus(status)
                : failure == Failure::kConnect ? on.Has(Condition::kConnectFailure)
                : failure == Failure::kReset   ? on.Has(Condition::kReset)
                                               : on.Has(Condition::kTimeout);
  if (!listed) {
    return false;
  }
  return retries_left_ > 0 && cluster_.RetryBudgetAllows();
}

bool ProxyStream::RetryOrFail(Failure failure, int status, int fail_status,
                              absl::string_view body) {
  if (!MayRetry(failure, status)) {
    EndAttempt(false, OutcomeOf(failure, status), ReasonOf(failure), status);
    FailBeforeResponse(fail_status, body);
    return false;
  }
  Retry(failure, status);
  return true;
}

void ProxyStream::Retry(Failure failure, int status, upstream::Host* next) {
  Log(LogLevel::kInfo, "retrying on another host",
      {{"upstream", cluster_.name()},
       {"host", host_->address()},
       {"cause", failure == Failure::kStatus ? absl::StrCat(status)
                                             : FailureName(static_cast<int>(failure))},
       {"request_id", std::string(request_id())}});
  EndAttempt(false, OutcomeOf(failure, status), ReasonOf(failure), status);
  --retries_left_;
  cluster_.retries_total().fetch_add(1, std::memory_order_relaxed);
  StartAttempt(next);
  // Counted after the pick: a retry that found no host is not in flight.
  if (attempt_active_) {
    attempt_is_retry_ = true;
    cluster_.active_retries().fetch_add(1, std::memory_order_relaxed);
  }
}

void ProxyStream::OnRequestBody(absl::string_view data) {
  if (finished_ || data.empty()) {
    return;
  }
  if (!body_too_large_to_retry_) {
    if (body_copy_.size() + data.size() <= kMaxRetryBodyBytes) {
      body_copy_.append(data.data(), data.size());
    } else if (awaiting_body_for_key_) {
      // Too large to key on or retry: stop holding it back and send what we have.
      body_too_large_to_retry_ = true;
      awaiting_body_for_key_ = false;
      BeginCachedRead();
      if (finished_ || connection_ == nullptr) {
        return;
      }
    } else {
      body_too_large_to_retry_ = true;
      std::string().swap(body_copy_);
    }
  }
  if (connection_ == nullptr) {
    return;
  }
  if (!response_started_ && connection_->connected() && kind_ != router::RequestKind::kWatch) {
    timer_.Enable(response_timeout_);  // a long upload that makes progress is not a timeout
  }
  evbuffer* out = connection_->transport().output();
  AddBodyPiece(out, data, head_.framing == http::BodyFraming::kChunked);
  if (connection_->transport().output_length() > kOutputHighWatermark) {
    // The upstream reads slower than the client sends: stop reading the client until the
    // upstream's buffer drains (OnUpstreamWritable). (The length counts TLS ciphertext too.)
    downstream_.PauseReading();
  }
}

void ProxyStream::OnRequestComplete() {
  request_complete_ = true;
  if (awaiting_body_for_key_) {
    awaiting_body_for_key_ = false;
    BeginCachedRead();  // sends the kept body itself
    return;
  }
  if (finished_ || connection_ == nullptr) {
    return;
  }
  if (head_.framing == http::BodyFraming::kChunked) {
    evbuffer_add(connection_->transport().output(), http::kLastChunk.data(),
                 http::kLastChunk.size());
  }
}

// The upstream's events (and the timer's, and a coalesced answer) come from the loop: an
// allocation that fails while they run closes the client's connection (GuardAllocation).
void ProxyStream::OnUpstreamConnected(upstream::UpstreamConnection&) {
  if (finished_) {
    return;
  }
  GuardAllocation(downstream_, [this] { ArmResponseTimer(); });
}

void ProxyStream::OnUpstreamWritable(upstream::UpstreamConnection&) {
  if (finished_) {
    return;
  }
  GuardAllocation(downstream_, [this] { downstream_.ResumeReading(); });
}

void ProxyStream::OnUpstreamReadable(upstream::UpstreamConnection&) {
  if (finished_) {
    return;
  }
  GuardAllocation(downstream_, [this] { ReadUpstream(); });
}

void ProxyStream::ReadUpstream() {
  if (in_read_ || connection_ == nullptr) {
    return;
  }
  in_read_ = true;
  evbuffer* input = connection_->transport().input();
  while (!finished_ && !response_complete_ && !retry_pending_ && !decoder_->has_error() &&
         evbuffer_get_length(input) > 0) {
    evbuffer_iovec chunk;
    if (evbuffer_peek(input, -1, nullptr, &chunk, 1) < 1) {
      break;
    }
    response_bytes_seen_ = true;
    size_t consumed =
        decoder_->Feed(absl::string_view(static_cast<const char*>(chunk.iov_base), chunk.iov_len));
    evbuffer_drain(input, consumed);
    if (consumed == 0) {
      break;
    }
    if (downstream_.output_length() > kOutputHighWatermark) {
      // The client reads slower than the upstream sends: stop reading the upstream until the
      // client's buffer drains (OnDownstreamDrained). Only this stream stalls.
      connection_->transport().DisableReading();
      upstream_read_paused_ = true;
      break;
    }
  }
  in_read_ = false;
  if (finished_) {
    return;
  }
  if (stale_pending_) {
    stale_pending_ = false;
    EndAttempt(false, OutcomeOf(Failure::kStatus, pending_status_),
               upstream::FailureReason::kStatus, pending_status_);
    ServeStaleAfterFailure();
    return;
  }
  if (retry_pending_) {
    retry_pending_ = false;
    // MayRetry() allowed it in OnResponseHead, which picked the host.
    Retry(Failure::kStatus, pending_status_, std::exchange(retry_host_, nullptr));
    return;
  }
  if (decoder_->has_error()) {
    Log(LogLevel::kWarn, "malformed upstream response",
        {{"upstream", cluster_.name()},
         {"host", host_->address()},
         {"reason", decoder_->error().reason}});
    EndAttempt(/*reusable=*/false, upstream::Outcome::kGatewayFailure,
               upstream::FailureReason::kMalformed);
    FailBeforeResponse(502, "malformed upstream response");
    return;
  }
  if (response_complete_) {
    FinishResponse();
  } else if (response_started_ && kind_ != router::RequestKind::kWatch) {
    timer_.Enable(response_timeout_);  // after the head, the timeout bounds each silence
  }
}

void ProxyStream::OnDownstreamDrained() {
  if (finished_ || !upstream_read_paused_ || connection_ == nullptr) {
    return;
  }
  upstream_read_paused_ = false;
  connection_->transport().EnableReading();
  ReadUpstream();
}

void ProxyStream::OnResponseHead(http::ResponseHead&& head) {
  if (MayRetry(Failure::kStatus, head.status)) {
    // A status is the host's answer: asked again it says the same (etcd's 503 without quorum),
    // so only another host gets the request; with none left, this answer stands.
    upstream::Host* next = PickHost();
    if (next != nullptr && std::find(tried_.begin(), tried_.end(), next) == tried_.end()) {
      // Not forwarded: the request goes to `next` once the decoder has returned.
      retry_pending_ = true;
      retry_host_ = next;
      pending_status_ = head.status;
      return;
    }
  }
  if (head.status >= 500 && StaleUsable()) {
    // Every attempt failed: the last good copy beats the error (stale-if-error).
    stale_pending_ = true;
    pending_status_ = head.status;
    return;
  }
  if (kind_ == router::RequestKind::kWrite) {
    InvalidateAfterWrite(*snapshot_, head_, head);  // from the head on, the write took effect
  }
  if (kind_ != router::RequestKind::kWatch) {
    timer_.Enable(response_timeout_);
  }
  response_status_ = head.status;
  upstream_keep_alive_ = head.keep_alive;
  if (cache_ != nullptr && method_ != "HEAD") {
    std::optional<std::string> why_not = cache::WhyNotStorable(head_, head, *route_.cache);
    // A coalescing leader keeps even an unstorable response: its waiters get the same answer.
    if (!why_not.has_value() || coalesce_leader_) {
      capturing_ = true;
      capture_storable_ = !why_not.has_value();
      capture_head_ = head;
      http::RemoveHopByHopHeaders(capture_head_.headers);
    }
    head.headers.Set("Cache-Status", cached_ != nullptr ? "confgate; fwd=stale"
                                     : cache::RequestAllowsCachedAnswer(head_)
                                         ? "confgate; fwd=miss"
                                         : "confgate; fwd=request");
  }
  http::ResponseHead& response = head;
  // A bodiless response's Content-Length describes the body it would have had (HEAD, 304).
  // (A view: the field's bytes stay in the head's text when the field is removed.)
  absl::string_view kept_length;
  if (response.framing == http::BodyFraming::kNone) {
    if (const absl::string_view* length = response.headers.Get(http::FieldId::kContentLength)) {
      kept_length = *length;
    }
  }
  http::PrepareDownstreamResponse(response, kVia);

  bool client_http10 = downstream_.request_version_minor() == 0;
  bool keep_alive = downstream_.keep_alive_after_response();
  switch (response.framing) {
    case http::BodyFraming::kNone:
      // HEAD and 304 responses describe the body they would have had.
      if (!kept_length.empty() && (method_ == "HEAD" || response.status == 304)) {
        response.headers.Set(http::FieldId::kContentLength, "Content-Length", kept_length);
      } else if (response.status != 204 && response.status != 304 && method_ != "HEAD") {
        response.headers.Set(http::FieldId::kContentLength, "Content-Length", "0");
      }
      break;
    case http::BodyFraming::kContentLength:
      http::SetFramingHeader(response.headers, response.framing, response.content_length);
      break;
    case http::BodyFraming::kChunked:
    case http::BodyFraming::kUntilClose:
      if (client_http10) {
        close_delimited_to_client_ = true;
        keep_alive = false;
      } else {
        chunked_to_client_ = true;
        response.headers.Set(http::FieldId::kTransferEncoding, "Transfer-Encoding", "chunked");
      }
      break;
  }
  if (!keep_alive) {
    response.headers.Set(http::FieldId::kConnection, "Connection", "close");
  } else if (client_http10) {
    response.headers.Set(http::FieldId::kConnection, "Connection", "keep-alive");
  }
  WriteHead(downstream_.output(), response);
  response_started_ = true;
  if (kind_ == router::RequestKind::kWatch) {
    ArmResponseTimer();  // a started watch stream: only max_hold ends it
  }
  downstream_.OnResponseStarted(response.status);
}

void ProxyStream::OnResponseBody(absl::string_view data) {
  if (data.empty() || retry_pending_ || stale_pending_) {
    return;
  }
  if (capturing_) {
    if (capture_.size() + data.size() > route_.cache->max_object_bytes) {
      capturing_ = false;  // too large to keep: it passes through uncached
      std::string().swap(capture_);
    } else {
      capture_.append(data.data(), data.size());
    }
  }
  AddBodyPiece(downstream_.output(), data, chunked_to_client_);
  downstream_.AddResponseBodyBytes(data.size());
}

void ProxyStream::OnResponseComplete() {
  if (retry_pending_ || stale_pending_) {
    return;
  }
  response_complete_ = true;
  if (chunked_to_client_) {
    evbuffer_add(downstream_.output(), http::kLastChunk.data(), http::kLastChunk.size());
  }
}

void ProxyStream::FinishResponse() {
  evbuffer* input = connection_->transport().input();
  // Bytes after the response mean the upstream is out of step with us: never reuse it. Nor
  // after `Connection: close` (or an HTTP/1.0 answer without keep-alive): the upstream may
  // ignore a further request and close whenever it likes (RFC 9112, 9.6).
  bool reusable = decoder_->paused() && request_complete_ && upstream_keep_alive_ &&
                  evbuffer_get_length(input) == 0;
  decoder_reusable_ = reusable;  // handed on by the destructor: we may be inside its Feed now
  EndAttempt(reusable, OutcomeOf(Failure::kStatus, response_status_),
             upstream::FailureReason::kStatus, response_status_);
  finished_ = true;
  StoreCapturedResponse();
  downstream_.OnResponseComplete(close_delimited_to_client_);
}

void ProxyStream::StoreCapturedResponse() {
  cache::CachedResponsePtr stored;
  if (capturing_) {
    auto response = std::make_shared<cache::CachedResponse>();
    absl::Time now = worker_.time_source().SystemTime();
    response->status = capture_head_.status;
    response->headers = capture_head_.headers;
    response->body = std::move(capture_);
    response->stored_at = now;
    int64_t age = 0;
    const absl::string_view* header = capture_head_.headers.Get(http::FieldId::kAge);
    if (header != nullptr && !absl::SimpleAtoi(*header, &age)) {
      age = 0;  // an unreadable Age counts as none
    }
    response->initial_age = absl::Seconds(std::max<int64_t>(age, 0));
    response->fresh_for = cache::FreshnessLifetime(capture_head_, *route_.cache, now);
    stored = std::move(response);
    if (capture_storable_) {
      std::vector<std::string> names = cache::VaryNames(capture_head_);
      cache_->Insert(cache::CacheItem{primary_key_, names, cache::VaryKey(head_, names), stored},
                     cache_generation_);
    }
    capturing_ = false;
  }
  CompleteCoalescing(stored);
}

void ProxyStream::CompleteCoalescing(cache::CachedResponsePtr response) {
  if (coalesce_leader_) {
    coalesce_leader_ = false;
    cache_->coalescer().Complete(primary_key_, std::move(response));
  }
}

void ProxyStream::OnUpstreamClosed(upstream::UpstreamConnection& connection, bool connect_failed) {
  if (finished_) {
    return;
  }
  GuardAllocation(downstream_, [this, &connection, connect_failed] {
    UpstreamClosed(connection, connect_failed);
  });
}

void ProxyStream::UpstreamClosed(upstream::UpstreamConnection& connection, bool connect_failed) {
  // Read whatever arrived before the close.
  ReadUpstream();
  if (finished_ || connection_ == nullptr || &connection != connection_.get()) {
    return;
  }
  if (!response_complete_ && decoder_->in_message()) {
    // A body that ends with the connection is complete only by the upstream's word: a bare
    // close may be a replica that died mid-body. The client gets it (as it would directly),
    // but the cache keeps it only when a TLS close_notify said the end was meant.
    if (!connection.transport().PeerClosedCleanly()) {
      capture_storable_ = false;
    }
    decoder_->FeedEof();  // completes a close-delimited body, or records a truncation
  }
  if (response_complete_) {
    FinishResponse();
    return;
  }
  if (response_started_) {
    EndAttempt(false, upstream::Outcome::kGatewayFailure, upstream::FailureReason::kReset);
    finished_ = true;
    downstream_.Abort();
    return;
  }
  if (connect_failed) {
    Log(LogLevel::kWarn, "upstream connect failed",
        {{"upstream", cluster_.name()}, {"host", host_->address()}});
    RetryOrFail(Failure::kConnect, 0, 502, "upstream connect failed");
    return;
  }
  if (connection.reuse_count() > 0 && !response_bytes_seen_ && !stale_retry_used_ &&
      kind_ == router::RequestKind::kRead && !(request_has_body_ && body_too_large_to_retry_)) {
    // A pooled connection the upstream closed just as we reused it: the read got no answer,
    // so it goes once more on a fresh connection, outside the retry budget.
    stale_retry_used_ = true;
    EndAttempt(false, upstream::Outcome::kNeutral);
    tried_.pop_back();  // the host itself is fine
    StartAttempt();
    return;
  }
  RetryOrFail(Failure::kReset, 0, 502, "upstream closed the connection");
}

void ProxyStream::OnTimeout() {
  if (finished_) {
    return;
  }
  if (waiting_for_leader_) {
    waiting_for_leader_ = false;
    if (StaleUsable()) {
      ServeCached(*cached_, CacheServe::kStaleIfError);
    } else {
      FailBeforeResponse(504, "upstream response timeout");
    }
    return;
  }
  bool connecting = connection_ != nullptr && !connection_->connected();
  if (kind_ == router::RequestKind::kWatch && !connecting &&
      (response_started_ || watch_wait_is_max_hold_)) {
    EndWatch("max_hold reached");
    return;
  }
  Log(LogLevel::kWarn, connecting ? "upstream connect timeout" : "upstream response timeout",
      {{"upstream", cluster_.name()}, {"host", host_ != nullptr ? host_->address() : ""}});
  // A watch whose hold ran out says nothing about the host.
  bool watch_hold_over = kind_ == router::RequestKind::kWatch && !connecting;
  if (response_started_) {
    EndAttempt(false,
               watch_hold_over ? upstream::Outcome::kNeutral : upstream::Outcome::kGatewayFailure,
               upstream::FailureReason::kTimeout);
    finished_ = true;
    downstream_.Abort();
    return;
  }
  if (watch_hold_over) {
    EndAttempt(false, upstream::Outcome::kNeutral);
    FailBeforeResponse(504, "upstream response timeout");
    return;
  }
  RetryOrFail(connecting ? Failure::kConnect : Failure::kTimeout, 0, 504,
              connecting ? "upstream connect timeout" : "upstream response timeout");
}

void ProxyStream::EndWatch(absl::string_view reason) {
  if (finished_ || kind_ != router::RequestKind::kWatch) {
    return;
  }
  Log(LogLevel::kInfo, "watch ended by confgate",
      {{"upstream", cluster_.name()},
       {"reason", std::string(reason)},
       {"response_started", response_started_ ? "true" : "false"},
       {"request_id", std::string(request_id())}});
  // The host did nothing wrong; its connection goes (the upstream's answer is left unread).
  EndAttempt(/*reusable=*/false, upstream::Outcome::kNeutral);
  finished_ = true;
  timer_.Disable();
  if (!response_started_) {
    std::string body =
        UpstreamErrorBody("watch_ended", cluster_.name(),
                          absl::StrCat("confgate ended the watch (", reason, "); watch again"));
    downstream_.SendLocalReply(503, body, /*close_after=*/false, "application/json",
                               absl::StrCat("Retry-After: ", kWatchEndedRetryAfterSeconds, "\r\n"));
    return;
  }
  if (chunked_to_client_) {
    // A proper end: the client sees a complete (if short) stream, never a cut one.
    evbuffer_add(downstream_.output(), http::kLastChunk.data(), http::kLastChunk.size());
    downstream_.OnResponseComplete(false);
  } else if (close_delimited_to_client_) {
    downstream_.OnResponseComplete(true);  // the close is the end of such a body
  } else {
    downstream_.Abort();  // a Content-Length body cut short can only be told by closing
  }
}

void ProxyStream::OnTotalTimeout() {
  if (finished_ || response_started_) {
    return;  // once a response is chosen, the response timeout bounds its silences
  }
  total_expired_ = true;  // no further try from now on
  if (!request_complete_) {
    return;  // an upload still making progress: the response timeout bounds it, as before
  }
  Log(LogLevel::kWarn, "request deadline (timeouts.total) reached",
      {{"upstream", cluster_.name()}, {"request_id", std::string(request_id())}});
  OnTimeout();  // ends the try in flight as a timeout; MayRetry() now refuses another
}

void ProxyStream::FailBeforeResponse(int status, absl::string_view message) {
  if (status >= 500 && StaleUsable() && !response_started_) {
    ServeStaleAfterFailure();
    return;
  }
  finished_ = true;
  timer_.Disable();
  total_timer_.Disable();
  CompleteCoalescing(nullptr);
  const char* error = status == 504   ? "upstream_timeout"
                      : status == 503 ? "upstream_unavailable"
                                      : "bad_gateway";
  downstream_.SendLocalReply(status, UpstreamErrorBody(error, cluster_.name(), message),
                             /*close_after=*/false, "application/json",
                             absl::StrCat("Retry-After: ", kReadOnlyRetryAfterSeconds, "\r\n"));
}

void ProxyStream::ServeStaleAfterFailure() {
  cache_->stats().stale.fetch_add(1, std::memory_order_relaxed);
  // Waiters get the stale copy too, rather than an error.
  CompleteCoalescing(cached_);
  ServeCached(*cached_, CacheServe::kStaleIfError);
}

void ProxyStream::Cancel() {
  // Runs in the destructor, and when closing for want of memory: nothing here may throw.
  finished_ = true;
  if (coalesce_leader_) {
    try {
      // Its group arrived before its fetch was sent: one of them fetches instead.
      coalesce_leader_ = false;
      cache_->coalescer().Resign(primary_key_);
    } catch (const std::bad_alloc&) {
      // Waiters not told wait for their response timeout instead.
    }
  }
  try {
    EndAttempt(/*reusable=*/false, upstream::Outcome::kNeutral);
  } catch (const std::bad_alloc&) {
    connection_.reset();  // destroyed now, which its transport allows in its callbacks
  }
}

}  // namespace confgate::server
