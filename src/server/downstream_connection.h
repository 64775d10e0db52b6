// One client connection: reads requests through the codec, answers them in order (pipelined
// requests wait for the response before theirs), enforces the header/idle timeouts.
#pragma once

#include <memory>
#include <new>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "confgate/event/dispatcher.h"
#include "confgate/event/timer_queue.h"
#include "confgate/http/codec.h"
#include "confgate/network/transport.h"
#include "confgate/server/access_log.h"
#include "confgate/server/runtime.h"

struct evbuffer;
struct ssl_st;

namespace confgate::server {

class ProxyStream;
class Worker;

// Output buffered for a slow peer before we stop adding to it: reading a response body from
// the upstream, reading a request body for it, and answering the client's next pipelined
// request wait until the buffer has drained.
inline constexpr size_t kOutputHighWatermark = 1024 * 1024;

class DownstreamConnection final : public event::DeferredDeletable,
                                   private http::RequestDecoderCallbacks,
                                   private network::TransportCallbacks {
 public:
  // Takes ownership of the accepted socket `fd`, and of `tls_session` (null for plain HTTP).
  DownstreamConnection(Worker& worker, int fd, ssl_st* tls_session, std::string client_ip);
  ~DownstreamConnection() override;

  // Worker is draining: close now if idle, else after the current exchange.
  void Drain();
  // A reload took effect: a watch whose route the new snapshot no longer has ends now.
  void OnReload(const RuntimeSnapshot& snapshot);
  // Closes at once (the worker is stopping).
  void Close();

  // --- used by ProxyStream ---
  evbuffer* output();
  size_t output_length();
  // Whether the response being written may keep the connection open afterwards.
  bool keep_alive_after_response() const;
  int request_version_minor() const { return request_version_minor_; }
  // The stream stops/starts reading the request body (upstream back-pressure).
  void PauseReading();
  void ResumeReading();
  // Response head written; `status` goes to the access log.
  void OnResponseStarted(int status);
  void AddResponseBodyBytes(uint64_t bytes) { log_entry().bytes_sent += bytes; }
  // The response is fully written to the output buffer. `must_close` when the connection
  // cannot carry another request (close-delimited body, upstream cut).
  void OnResponseComplete(bool must_close);
  // Answers with a short local response (errors) unless a response was already started, in
  // which case the connection is closed.
  // `extra_headers` are complete "Name: value\r\n" lines.
  void SendLocalReply(int status, absl::string_view body, bool close_after = false,
                      absl::string_view content_type = "text/plain",
                      absl::string_view extra_headers = "");
  // The response cannot be completed: close at once, the client sees a truncated message.
  void Abort();
  void SetUpstreamForLog(const std::string& upstream, const std::string& host);
  const std::string& client_ip() const { return client_ip_; }
  bool tls() const { return tls_; }
  // The address the client reached, as a Host value (for HTTP/1.0 requests without Host).
  std::string local_authority() const { return transport_->LocalAuthority(); }
  // An allocation failed in one of this connection's events (std::bad_alloc, caught where the
  // event came in: see GuardAllocation): the connection closes at once, the process goes on.
  // Allocates nothing that must succeed.
  void OnAllocationFailure();

 private:
  enum class TimerMode { kNone, kHeader, kIdle, kBody, kCloseFlush };

  // confgate::network::TransportCallbacks
  void OnTransportConnected() override {}
  void OnTransportReadable() override;
  void OnTransportDrained() override;
  void OnTransportClosed(bool connect_failed) override;

  void OnOutputDrained();
  void OnPeerClosed();

  // http::RequestDecoderCallbacks
  void OnRequestHead(http::RequestHead&& head) override;
  void OnRequestBody(absl::string_view data) override;
  void OnRequestComplete() override;

  void ProcessInput();
  void HandleDecodeError();
  void MaybeFinishExchange();
  void FinishExchange();
  void CloseAfterFlush();
  void ArmTimer(TimerMode mode, absl::Duration timeout);
  void OnTimer();
  void WriteAccessLog();
  // The current exchange's access-log entry; an idle connection holds none.
  AccessLogEntry& log_entry() { return log_entry_ != nullptr ? *log_entry_ : StartLogEntry(); }
  // A fresh entry for an exchange that starts now (from the worker's spares).
  AccessLogEntry& StartLogEntry();
  void ReleaseLogEntry();
  // The request decoder, made when a request starts to arrive. An idle keep-alive connection
  // holds none (most connections of config clients are idle between polls), and a new one
  // takes the limits of the connection's configuration.
  http::RequestDecoder& decoder();
  void ReleaseDecoderIfIdle();
  bool decoder_in_message() const { return decoder_ != nullptr && decoder_->in_message(); }
  bool decoder_failed() const { return decoder_ != nullptr && decoder_->has_error(); }

  Worker& worker_;
  RuntimeSnapshotPtr snapshot_;
  std::unique_ptr<network::Transport> transport_;
  std::string client_ip_;
  bool tls_;
  std::unique_ptr<http::RequestDecoder> decoder_;
  std::unique_ptr<ProxyStream> stream_;
  event::QueuedTimer timer_;
  TimerMode timer_mode_ = TimerMode::kNone;

  // The current exchange.
  bool request_active_ = false;    // head received, exchange not finished
  bool request_complete_ = false;  // whole request (body included) received
  bool request_has_body_ = false;
  bool response_started_ = false;
  bool response_complete_ = false;
  bool client_keep_alive_ = true;
  bool close_after_exchange_ = false;
  bool reading_paused_ = false;
  // The next pipelined request waits until the output drains (kOutputHighWatermark): answers
  // from the cache, or local ones, are made at once, however slowly the client reads them.
  bool output_blocked_ = false;
  int request_version_minor_ = 1;
  std::unique_ptr<AccessLogEntry> log_entry_;

  bool draining_ = false;
  bool closed_ = false;
  bool closing_after_flush_ = false;
  bool in_process_input_ = false;
  bool close_pending_ = false;   // Close() was called inside ProcessInput()
  bool resume_pending_ = false;  // the exchange finished inside ProcessInput()
};

// Runs one event of `connection` or of its exchange, a callback from the loop. An allocation
// that fails in it closes that connection, not the process: the stack unwinds to here, and no
// step it cut short is resumed.
template <typename Work>
void GuardAllocation(DownstreamConnection& connection, Work&& work) {
  try {
    std::forward<Work>(work)();
  } catch (const std::bad_alloc&) {
    connection.OnAllocationFailure();
  }
}

}  // namespace confgate::server
