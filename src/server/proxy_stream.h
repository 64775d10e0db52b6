// One proxied request: picks a host, sends the request upstream (body streamed as it arrives),
// streams the response back, with back-pressure both ways and the response timeout.
#pragma once

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "confgate/event/dispatcher.h"
#include "confgate/http/codec.h"
#include "confgate/router/router.h"
#include "confgate/server/runtime.h"
#include "confgate/upstream/connection_pool.h"

namespace confgate::server {

class DownstreamConnection;
class Worker;

class ProxyStream final : private upstream::UpstreamConnectionHandler,
                          private http::ResponseDecoderCallbacks {
 public:
  ProxyStream(Worker& worker, DownstreamConnection& downstream, RuntimeSnapshotPtr snapshot,
              const router::Route& route, http::RequestHead head);
  ~ProxyStream() override;

  // Sends the request head; body bytes follow through OnRequestBody().
  void Start();
  void OnRequestBody(absl::string_view data);
  void OnRequestComplete();
  // The client's output buffer drained: resume reading the upstream response.
  void OnDownstreamDrained();
  // The client went away or the connection is closing: drop the upstream connection.
  void Cancel();
  const std::string& request_id() const { return request_id_; }

 private:
  // upstream::UpstreamConnectionHandler
  void OnUpstreamConnected(upstream::UpstreamConnection& connection) override;
  void OnUpstreamReadable(upstream::UpstreamConnection& connection) override;
  void OnUpstreamWritable(upstream::UpstreamConnection& connection) override;
  void OnUpstreamClosed(upstream::UpstreamConnection& connection, bool connect_failed) override;

  // http::ResponseDecoderCallbacks
  void OnResponseHead(http::ResponseHead head) override;
  void OnResponseBody(absl::string_view data) override;
  void OnResponseComplete() override;

  bool SendToHost(const upstream::Host* exclude);
  void ReadUpstream();
  void FinishResponse();
  void ReleaseUpstream(bool reusable);
  void FailBeforeResponse(int status, absl::string_view body);
  void OnTimeout();
  absl::Duration ResponseTimeout() const;

  Worker& worker_;
  DownstreamConnection& downstream_;
  RuntimeSnapshotPtr snapshot_;
  const router::Route& route_;
  const upstream::Cluster& cluster_;
  router::RequestKind kind_;
  http::RequestHead head_;
  std::string method_;
  std::string request_id_;
  std::string serialized_head_;  // kept for one retry of a bodiless request

  upstream::UpstreamConnectionPtr connection_;
  upstream::Host* host_ = nullptr;
  std::unique_ptr<http::ResponseDecoder> decoder_;
  event::TimerPtr timer_;
  absl::Duration response_timeout_;

  bool request_has_body_ = false;
  bool request_complete_ = false;
  bool request_body_started_ = false;
  bool response_started_ = false;  // head written to the client
  bool response_complete_ = false;
  bool response_bytes_seen_ = false;
  bool chunked_to_client_ = false;
  bool close_delimited_to_client_ = false;
  bool upstream_read_paused_ = false;
  bool retried_ = false;
  bool finished_ = false;
  bool in_read_ = false;
};

}  // namespace confgate::server
