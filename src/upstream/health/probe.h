// One active health check of one host: a fresh connection (never a pooled one), and for http
// checks one GET whose status must fall in the expected ranges.
#pragma once

#include <functional>
#include <memory>

#include "confgate/config/config.h"
#include "confgate/event/dispatcher.h"
#include "confgate/http/codec.h"
#include "confgate/upstream/connection_pool.h"
#include "confgate/upstream/health.h"

namespace confgate::upstream {

class HealthProbe final : public event::DeferredDeletable,
                          private UpstreamConnectionHandler,
                          private http::ResponseDecoderCallbacks {
 public:
  using Done = std::function<void(CheckResult result, int status)>;

  // `done` runs once, from the event loop; the owner may destroy the probe (deferred) then.
  // With `tls`, checks use the upstream's TLS settings.
  HealthProbe(event::Dispatcher& dispatcher, Host& host, const config::HealthCheckConfig& config,
              std::shared_ptr<const network::ClientTls> tls, Done done);
  ~HealthProbe() override;

 private:
  // UpstreamConnectionHandler
  void OnUpstreamConnected(UpstreamConnection& connection) override;
  void OnUpstreamReadable(UpstreamConnection& connection) override;
  void OnUpstreamWritable(UpstreamConnection&) override {}
  void OnUpstreamClosed(UpstreamConnection& connection, bool connect_failed) override;

  // http::ResponseDecoderCallbacks
  void OnResponseHead(http::ResponseHead&& head) override;
  void OnResponseBody(absl::string_view) override {}
  void OnResponseComplete() override {}

  void Finish(CheckResult result, int status = 0);

  const config::HealthCheckConfig config_;  // a copy: a reload may end the old config
  Done done_;
  std::shared_ptr<const network::ClientTls> tls_;
  UpstreamConnectionPtr connection_;
  std::unique_ptr<http::ResponseDecoder> decoder_;
  event::TimerPtr timeout_;
  bool finished_ = false;
};

}  // namespace confgate::upstream
