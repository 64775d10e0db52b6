#include "server/downstream_connection.h"

#include <event2/buffer.h>
#include <event2/event.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "confgate/common/log.h"
#include "server/proxy_stream.h"
#include "server/worker.h"

namespace confgate::server {
namespace {

// Pipelined requests beyond this stay in the kernel until their turn comes.
constexpr size_t kMinReadHighWatermark = 64 * 1024;

}  // namespace

DownstreamConnection::DownstreamConnection(Worker& worker, int fd, ssl_st* tls_session,
                                           std::string client_ip)
    : worker_(worker),
      snapshot_(worker.snapshot()),
      client_ip_(std::move(client_ip)),
      tls_(tls_session != nullptr),
      timer_(worker.timers(), [this] { GuardAllocation(*this, [this] { OnTimer(); }); }) {
  const config::LimitsConfig& limits = snapshot_->config.limits;
  // A client must send a complete request head within header_timeout of connecting; for TLS
  // the handshake counts, so a stalled handshake is cut off too.
  ArmTimer(TimerMode::kHeader, limits.header_timeout);
  // Last: what may throw (std::bad_alloc) comes before the transport takes the socket.
  transport_ = tls_session != nullptr
                   ? network::Transport::AcceptedTls(worker.dispatcher(), fd, tls_session, *this)
                   : network::Transport::Accepted(worker.dispatcher(), fd, *this);
  transport_->SetReadLimit(
      std::max<size_t>(kMinReadHighWatermark, limits.max_request_header_bytes + 4096));
}

DownstreamConnection::~DownstreamConnection() = default;

evbuffer* DownstreamConnection::output() { return transport_->output(); }

size_t DownstreamConnection::output_length() { return transport_->output_length(); }

bool DownstreamConnection::keep_alive_after_response() const {
  return client_keep_alive_ && !draining_ && !close_after_exchange_;
}

void DownstreamConnection::PauseReading() {
  if (!reading_paused_ && !closed_) {
    reading_paused_ = true;
    transport_->DisableReading();
  }
}

void DownstreamConnection::ResumeReading() {
  if (reading_paused_ && !closed_) {
    reading_paused_ = false;
    transport_->EnableReading();
    ProcessInput();
  }
}

void DownstreamConnection::OnTransportReadable() {
  GuardAllocation(*this, [this] { ProcessInput(); });
}

void DownstreamConnection::OnTransportDrained() {
  GuardAllocation(*this, [this] { OnOutputDrained(); });
}

void DownstreamConnection::OnTransportClosed(bool) {
  GuardAllocation(*this, [this] { OnPeerClosed(); });
}

void DownstreamConnection::OnAllocationFailure() {
  worker_.NoteAllocationFailure("connection");
  if (closed_) {
    return;
  }
  // The exception may have cut any step short (the decoder inside a message, the flags of a
  // callback it unwound): nothing of this exchange goes on, and it gets no access-log line
  // (that would need memory). A response cut short must not look complete (TLS: no
  // close_notify).
  in_process_input_ = false;
  close_pending_ = false;
  request_active_ = false;
  ReleaseLogEntry();
  transport_->Abort();
  Close();
}

void DownstreamConnection::OnOutputDrained() {
  if (closed_) {
    return;
  }
  if (closing_after_flush_) {
    Close();
    return;
  }
  if (stream_ != nullptr) {
    stream_->OnDownstreamDrained();
  }
  if (output_blocked_) {
    output_blocked_ = false;
    ProcessInput();  // the next pipelined request
  }
}

void DownstreamConnection::OnPeerClosed() {
  // Half-closed clients are treated as gone, like Envoy: a parked watch must not outlive
  // the client that asked for it.
  if (request_active_ && !response_complete_) {
    Abort();
  } else {
    Close();
  }
}

void DownstreamConnection::ProcessInput() {
  if (closed_ || in_process_input_) {
    return;
  }
  in_process_input_ = true;
  while (!close_pending_ && !reading_paused_ && !closing_after_flush_ && !decoder_failed() &&
         transport_->input_length() > 0) {
    if (!request_active_ && output_length() > kOutputHighWatermark) {
      // Between two exchanges, with the client behind on reading: the next request waits
      // until the output has drained (and the input stops at its read limit meanwhile).
      output_blocked_ = true;
      break;
    }
    evbuffer* input = transport_->input();
    http::RequestDecoder& decoder = this->decoder();
    if (decoder.paused()) {
      if (!resume_pending_) {
        break;  // a pipelined request waits for the response before it
      }
      resume_pending_ = false;
      decoder.Resume();
    }
    bool was_in_message = decoder.in_message();
    evbuffer_iovec chunk;
    if (evbuffer_peek(input, -1, nullptr, &chunk, 1) < 1) {
      break;
    }
    size_t consumed =
        decoder.Feed(absl::string_view(static_cast<const char*>(chunk.iov_base), chunk.iov_len));
    evbuffer_drain(input, consumed);
    if (!was_in_message && !request_active_ && decoder.in_message()) {
      // The first byte of the next request: the head must now arrive within header_timeout.
      ArmTimer(TimerMode::kHeader, snapshot_->config.limits.header_timeout);
    }
    if (consumed == 0 && !resume_pending_) {
      break;
    }
  }
  if (resume_pending_ && decoder_ != nullptr && decoder_->paused()) {
    resume_pending_ = false;
    decoder_->Resume();
  }
  in_process_input_ = false;
  if (close_pending_) {
    Close();
    return;
  }
  if (decoder_failed()) {
    HandleDecodeError();
    return;
  }
  ReleaseDecoderIfIdle();
}

http::RequestDecoder& DownstreamConnection::decoder() {
  if (decoder_ == nullptr) {
    const config::LimitsConfig& limits = snapshot_->config.limits;
    http::DecoderLimits decoder_limits;
    decoder_limits.max_header_bytes = limits.max_request_header_bytes;
    decoder_limits.max_body_bytes = limits.max_request_body_bytes;
    decoder_ = worker_.request_decoders().Take(*this, decoder_limits);
  }
  return *decoder_;
}

void DownstreamConnection::ReleaseDecoderIfIdle() {
  if (request_active_ || in_process_input_ || closed_ || transport_->input_length() != 0) {
    return;
  }
  if (decoder_ != nullptr) {
    if (decoder_->in_message() || decoder_->paused() || decoder_->has_error()) {
      return;
    }
    worker_.request_decoders().Return(std::move(decoder_));
  }
  transport_->ReleaseIdleBuffers();
}

void DownstreamConnection::HandleDecodeError() {
  const http::DecodeError& error = decoder().error();
  Log(LogLevel::kDebug, "bad request",
      {{"client", client_ip_}, {"status", absl::StrCat(error.status)}, {"reason", error.reason}});
  if (stream_ != nullptr) {
    stream_->Cancel();
  }
  if (!request_active_) {
    // The error happened in a head: start an exchange so it is logged.
    request_active_ = true;
    StartLogEntry();
  }
  SendLocalReply(error.status, absl::StrCat(error.reason, "\n"), /*close_after=*/true);
}

void DownstreamConnection::OnRequestHead(http::RequestHead&& head) {
  timer_.Disable();
  timer_mode_ = TimerMode::kNone;
  request_active_ = true;
  request_complete_ = false;
  response_started_ = false;
  response_complete_ = false;
  client_keep_alive_ = head.keep_alive;
  request_has_body_ = head.framing != http::BodyFraming::kNone;
  request_version_minor_ = head.version_minor;
  AccessLogEntry& entry = StartLogEntry();
  entry.method = head.method;
  bool logging = worker_.shared().access_log != nullptr;
  if (logging) {
    entry.path.assign(head.path().data(), head.path().size());
  }
  // Each request takes the latest snapshot: a reload applies to the next request of a
  // keep-alive connection, while the request in flight finishes on the one it started with.
  snapshot_ = worker_.snapshot();

  const router::Route* route = snapshot_->routes.Match(head.method, head.path(), head.query());
  if (route == nullptr) {
    // A body we will not read keeps us from reusing the connection.
    SendLocalReply(404, "no route\n", request_has_body_);
    return;
  }
  if (head.framing != http::BodyFraming::kNone) {
    ArmTimer(TimerMode::kBody, snapshot_->config.limits.idle_timeout);
  }
  bool expect_continue = head.expect_continue && head.version_minor >= 1;
  stream_ = std::make_unique<ProxyStream>(worker_, *this, snapshot_, *route, std::move(head));
  if (logging) {
    entry.upstream = route->upstream;
  }
  if (expect_continue) {
    // We take the body ourselves and stream it on; the upstream never sees the Expect.
    evbuffer_add(output(), "HTTP/1.1 100 Continue\r\n\r\n", 25);
  }
  stream_->Start();
}

void DownstreamConnection::OnRequestBody(absl::string_view data) {
  if (timer_mode_ == TimerMode::kBody) {
    ArmTimer(TimerMode::kBody, snapshot_->config.limits.idle_timeout);
  }
  if (stream_ != nullptr && !response_complete_) {
    stream_->OnRequestBody(data);
  }
}

void DownstreamConnection::OnRequestComplete() {
  request_complete_ = true;
  if (timer_mode_ == TimerMode::kBody) {
    timer_.Disable();
    timer_mode_ = TimerMode::kNone;
  }
  if (stream_ != nullptr && !response_complete_) {
    stream_->OnRequestComplete();
  }
  MaybeFinishExchange();
}

void DownstreamConnection::OnResponseStarted(int status) {
  response_started_ = true;
  log_entry().status = status;
}

void DownstreamConnection::SetUpstreamForLog(const std::string& upstream, const std::string& host) {
  if (worker_.shared().access_log == nullptr) {
    return;  // only the access log shows them
  }
  AccessLogEntry& entry = log_entry();
  entry.upstream = upstream;
  entry.host = host;
}

void DownstreamConnection::OnResponseComplete(bool must_close) {
  response_complete_ = true;
  if (must_close) {
    close_after_exchange_ = true;
  }
  if (!request_complete_ && (request_has_body_ || close_after_exchange_)) {
    // The upstream answered before the request body ended: we cannot find the next request's
    // start without reading the rest, so the connection ends here.
    close_after_exchange_ = true;
    FinishExchange();
    return;
  }
  MaybeFinishExchange();
}

void DownstreamConnection::SendLocalReply(int status, absl::string_view body, bool close_after,
                                          absl::string_view content_type,
                                          absl::string_view extra_headers) {
  if (closed_ || close_pending_) {
    return;
  }
  if (response_started_) {
    Abort();
    return;
  }
  if (close_after) {
    close_after_exchange_ = true;
  }
  if (stream_ != nullptr && !request_complete_) {
    // The rest of the body would have gone to the upstream we are not talking to any more.
    close_after_exchange_ = true;
  }
  std::string response = absl::StrCat(
      "HTTP/1.1 ", status, " ", http::ReasonPhrase(status), "\r\nContent-Type: ", content_type,
      "\r\nContent-Length: ", body.size(), "\r\nCache-Control: no-store\r\n", extra_headers);
  if (stream_ != nullptr && !stream_->request_id().empty()) {
    absl::StrAppend(&response, "X-Request-Id: ", stream_->request_id(), "\r\n");
  }
  if (!keep_alive_after_response()) {
    response.append("Connection: close\r\n");
  } else if (request_version_minor_ == 0) {
    response.append("Connection: keep-alive\r\n");
  }
  response.append("\r\n");
  if (log_entry().method != "HEAD") {
    absl::StrAppend(&response, body);
    log_entry().bytes_sent += body.size();
  }
  evbuffer_add(output(), response.data(), response.size());
  OnResponseStarted(status);
  OnResponseComplete(close_after_exchange_);
}

void DownstreamConnection::MaybeFinishExchange() {
  if (request_active_ && request_complete_ && response_complete_) {
    FinishExchange();
  }
}

void DownstreamConnection::FinishExchange() {
  WriteAccessLog();
  ReleaseLogEntry();
  request_active_ = false;
  if (stream_ != nullptr) {
    stream_->Cancel();  // no-op when it finished cleanly
    worker_.dispatcher().DeferredDelete(std::move(stream_));
  }
  if (!keep_alive_after_response() || decoder_failed()) {
    CloseAfterFlush();
    return;
  }
  ArmTimer(TimerMode::kIdle, snapshot_->config.limits.idle_timeout);
  if (in_process_input_) {
    resume_pending_ = true;  // the decoder pauses when the callback returns; undo it after
    return;
  }
  if (decoder_ != nullptr) {
    decoder_->Resume();
  }
  ProcessInput();  // the next pipelined request, or else the decoder goes back to the worker
}

void DownstreamConnection::WriteAccessLog() {
  AccessLogEntry& entry = log_entry();
  entry.duration = worker_.time_source().SystemTime() - entry.start;
  if (stream_ != nullptr) {
    stream_->cluster().requests_by_code().Increment(entry.status);
    stream_->cluster().request_duration().Observe(entry.duration);
  }
  if (worker_.shared().access_log != nullptr) {
    if (stream_ != nullptr) {
      absl::string_view id = stream_->request_id();
      entry.request_id.assign(id.data(), id.size());
    }
    worker_.shared().access_log->Append(entry);
  }
}

AccessLogEntry& DownstreamConnection::StartLogEntry() {
  if (log_entry_ == nullptr) {
    log_entry_ = worker_.log_entries().TakeSpare();
    if (log_entry_ == nullptr) {
      log_entry_ = std::make_unique<AccessLogEntry>();
    }
  }
  // Cleared, not replaced: the strings keep their capacity for the next exchange.
  AccessLogEntry& entry = *log_entry_;
  entry.start = worker_.time_source().SystemTime();
  entry.client = client_ip_;
  entry.method.clear();
  entry.path.clear();
  entry.status = 0;
  entry.bytes_sent = 0;
  entry.upstream.clear();
  entry.host.clear();
  entry.duration = absl::ZeroDuration();
  entry.request_id.clear();
  return entry;
}

void DownstreamConnection::ReleaseLogEntry() {
  // An entry that held a long path or id keeps it for no one: only modest ones are reused.
  constexpr size_t kMaxKeptCapacity = 512;
  if (log_entry_ != nullptr && log_entry_->path.capacity() <= kMaxKeptCapacity &&
      log_entry_->request_id.capacity() <= kMaxKeptCapacity) {
    worker_.log_entries().Return(std::move(log_entry_));
  }
  log_entry_.reset();
}

void DownstreamConnection::CloseAfterFlush() {
  if (closed_) {
    return;
  }
  closing_after_flush_ = true;
  transport_->DisableReading();
  if (output_length() == 0) {
    Close();
    return;
  }
  // A client that never reads its last response must not hold the connection forever.
  ArmTimer(TimerMode::kCloseFlush, snapshot_->config.limits.idle_timeout);
}

void DownstreamConnection::Abort() {
  if (closed_) {
    return;
  }
  if (request_active_) {
    if (log_entry().status == 0) {
      log_entry().status = 499;  // nginx's "client closed request"; shows aborted exchanges
    }
    WriteAccessLog();
    ReleaseLogEntry();
    request_active_ = false;
  }
  transport_->Abort();  // a cut response must not end with TLS's "this was all"
  Close();
}

void DownstreamConnection::Drain() {
  draining_ = true;
  if (!request_active_ && !decoder_in_message()) {
    Close();
    return;
  }
  // Other exchanges finish; a watch could outlast the drain timeout, so it ends now, cleanly.
  if (stream_ != nullptr) {
    GuardAllocation(*this, [this] { stream_->EndWatch("draining"); });
  }
}

void DownstreamConnection::OnReload(const RuntimeSnapshot& snapshot) {
  if (stream_ == nullptr) {
    return;
  }
  const router::Route& held = stream_->route();
  for (const router::Route& route : snapshot.routes.routes()) {
    if (route.match.prefix == held.match.prefix && route.match.methods == held.match.methods &&
        route.match.query == held.match.query &&
        route.match.query_value == held.match.query_value && route.upstream == held.upstream &&
        route.kind == held.kind) {
      return;  // kept: the watch goes on under the route it started with
    }
  }
  GuardAllocation(*this, [this] { stream_->EndWatch("route removed by reload"); });
}

void DownstreamConnection::Close() {
  if (closed_) {
    return;
  }
  if (in_process_input_) {
    close_pending_ = true;  // the input buffer is in use; ProcessInput() closes on its way out
    if (stream_ != nullptr) {
      stream_->Cancel();
    }
    return;
  }
  closed_ = true;
  timer_.Disable();
  if (stream_ != nullptr) {
    stream_->Cancel();
  }
  transport_->Silence();
  transport_.reset();
  worker_.RemoveConnection(*this);
}

void DownstreamConnection::ArmTimer(TimerMode mode, absl::Duration timeout) {
  timer_mode_ = mode;
  timer_.Enable(timeout);
}

void DownstreamConnection::OnTimer() {
  TimerMode mode = timer_mode_;
  timer_mode_ = TimerMode::kNone;
  switch (mode) {
    case TimerMode::kHeader:
      if (decoder_in_message() && !request_active_) {
        request_active_ = true;
        StartLogEntry();
        SendLocalReply(408, "request header timeout\n", /*close_after=*/true);
      } else {
        Close();
      }
      return;
    case TimerMode::kBody:
      if (!response_started_) {
        SendLocalReply(408, "request body timeout\n", /*close_after=*/true);
      } else {
        Abort();
      }
      return;
    case TimerMode::kIdle:
    case TimerMode::kCloseFlush:
      Close();
      return;
    case TimerMode::kNone:
      return;
  }
}

}  // namespace confgate::server
