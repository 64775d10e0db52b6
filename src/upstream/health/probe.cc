#include "upstream/health/probe.h"

#include <event2/buffer.h>
#include <event2/event.h>

#include "absl/strings/str_cat.h"

namespace confgate::upstream {

HealthProbe::HealthProbe(event::Dispatcher& dispatcher, Host& host,
                         const config::HealthCheckConfig& config,
                         std::shared_ptr<const network::ClientTls> tls, Done done)
    : config_(config), done_(std::move(done)), tls_(std::move(tls)) {
  timeout_ = dispatcher.CreateTimer([this] { Finish(CheckResult::kTimeout); });
  timeout_->Enable(config_.timeout);
  connection_ = UpstreamConnection::Connect(dispatcher, host, *this, tls_.get());
  if (config_.type == "http") {
    decoder_ = http::ResponseDecoder::Create(*this, http::DecoderLimits{});
    decoder_->ExpectResponse("GET");
    std::string request =
        absl::StrCat("GET ", config_.path,
                     " HTTP/1.1\r\nHost: ", config_.host.empty() ? host.address() : config_.host,
                     "\r\nUser-Agent: confgate-health-check\r\nConnection: close\r\n\r\n");
    evbuffer_add(connection_->transport().output(), request.data(), request.size());
  }
}

HealthProbe::~HealthProbe() = default;

void HealthProbe::OnUpstreamConnected(UpstreamConnection&) {
  if (config_.type == "tcp") {
    Finish(CheckResult::kPass);
  }
}

void HealthProbe::OnUpstreamReadable(UpstreamConnection& connection) {
  if (finished_ || decoder_ == nullptr) {
    return;
  }
  evbuffer* input = connection.transport().input();
  while (!finished_ && !decoder_->has_error() && evbuffer_get_length(input) > 0) {
    evbuffer_iovec chunk;
    if (evbuffer_peek(input, -1, nullptr, &chunk, 1) < 1) {
      break;
    }
    size_t consumed =
        decoder_->Feed(absl::string_view(static_cast<const char*>(chunk.iov_base), chunk.iov_len));
    evbuffer_drain(input, consumed);
    if (consumed == 0) {
      break;
    }
  }
  if (!finished_ && decoder_->has_error()) {
    Finish(CheckResult::kBadStatus);
  }
}

void HealthProbe::OnResponseHead(http::ResponseHead&& head) {
  for (const config::StatusRange& range : config_.expected_statuses) {
    if (head.status >= range.low && head.status <= range.high) {
      Finish(CheckResult::kPass, head.status);
      return;
    }
  }
  Finish(CheckResult::kBadStatus, head.status);
}

void HealthProbe::OnUpstreamClosed(UpstreamConnection&, bool connect_failed) {
  Finish(connect_failed ? CheckResult::kConnectFailure : CheckResult::kReset);
}

void HealthProbe::Finish(CheckResult result, int status) {
  if (finished_) {
    return;
  }
  finished_ = true;
  timeout_->Disable();
  if (connection_ != nullptr) {
    connection_->transport().Silence();
  }
  done_(result, status);
}

}  // namespace confgate::upstream
