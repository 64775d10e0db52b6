// The codec over llhttp. llhttp does the tokenizing; we add the checks that keep a proxy from
// being desynchronized: a strict CRLF/obs-fold scan of every head, and semantic checks of the
// framing headers once a head is complete.
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "confgate/http/codec.h"
#include "http/llhttp_decoder.h"
#include "http/request_target.h"

namespace confgate::http {
namespace {

using internal::LlhttpDecoder;

class RequestDecoderImpl final : public RequestDecoder, private LlhttpDecoder {
 public:
  RequestDecoderImpl(RequestDecoderCallbacks& callbacks, const DecoderLimits& limits)
      : LlhttpDecoder(HTTP_REQUEST, limits), callbacks_(&callbacks) {}

  // confgate::http::RequestDecoder
  size_t Feed(absl::string_view data) override { return FeedBytes(data); }
  void Resume() override { ResumeParser(); }
  void Reuse(RequestDecoderCallbacks& callbacks, const DecoderLimits& limits) override {
    callbacks_ = &callbacks;
    limits_ = limits;
    scanner_.Reset();
  }
  bool paused() const override { return paused_; }
  bool in_message() const override { return InMessage(); }
  bool has_error() const override { return has_error_; }
  const DecodeError& error() const override { return error_; }

 private:
  int HeadersComplete() override {
    RequestHead head;
    head.method = llhttp_method_name(static_cast<llhttp_method_t>(parser_.method));
    if (parser_.http_major != 1 || parser_.http_minor > 1) {
      return Fail(400, "unsupported HTTP version");
    }
    head.version_minor = parser_.http_minor;
    if (head.method == "CONNECT") {
      return Fail(400, "CONNECT is not supported");
    }
    if (!CheckFramingHeaders(&head.framing, &head.content_length)) {
      return -1;
    }
    // RFC 9112 section 6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing (a
    // 1.0 hop in between would not have understood it); answer and close.
    if (head.version_minor == 0 && head.framing == BodyFraming::kChunked) {
      return Fail(400, "Transfer-Encoding in an HTTP/1.0 request");
    }
    head.headers = std::move(headers_);  // before SetTarget(): the target is kept in its text
    int hosts = 0;
    for (const HeaderMap::Entry& entry : head.headers.entries()) {
      hosts += entry.id == FieldId::kHost;
    }
    if (hosts > 1 || (hosts == 0 && head.version_minor == 1)) {
      return Fail(400, "missing or repeated Host");
    }
    if (!SetTarget(head)) {
      return -1;
    }
    if (head.framing == BodyFraming::kContentLength && limits_.max_body_bytes > 0 &&
        head.content_length > limits_.max_body_bytes) {
      return Fail(413, "body too large");
    }
    head.keep_alive = llhttp_should_keep_alive(&parser_) != 0;
    const absl::string_view* expect = head.headers.Get(FieldId::kExpect);
    head.expect_continue = expect != nullptr && absl::EqualsIgnoreCase(*expect, "100-continue");
    // We strip Upgrade and never switch protocols, so the bytes after this request are HTTP.
    parser_.upgrade = 0;
    callbacks_->OnRequestHead(std::move(head));
    return 0;
  }

  bool SetTarget(RequestHead& head) {
    absl::string_view url = this->url();
    if (HasForbiddenTargetByte(url)) {
      Fail(400, "control byte or fragment in request target");
      return false;
    }
    if (!url.empty() && url[0] == '/') {
      return SplitTarget(url, head);  // origin-form: nearly every request
    }
    std::string target(url);
    if (absl::StartsWithIgnoreCase(target, "http://") ||
        absl::StartsWithIgnoreCase(target, "https://")) {
      size_t scheme_end = target.find("://") + 3;
      size_t path_start = target.find_first_of("/?", scheme_end);
      std::string authority = target.substr(scheme_end, path_start - scheme_end);
      const absl::string_view* host = head.headers.Get(FieldId::kHost);
      if (authority.empty() || host == nullptr || !absl::EqualsIgnoreCase(authority, *host)) {
        Fail(400, "absolute-form target disagrees with Host");
        return false;
      }
      target = path_start == std::string::npos ? "/" : target.substr(path_start);
      if (target[0] == '?') {
        target = "/" + target;
      }
    }
    if (target.empty() || target[0] != '/') {
      Fail(400, "request target must be origin-form");
      return false;
    }
    return SplitTarget(target, head);
  }

  // Sets the head's target (and so its path and query) from an origin-form target; one of a
  // whole head is in the head's text already and is not copied again.
  bool SplitTarget(absl::string_view target, RequestHead& head) {
    if (HasDotSegment(target.substr(0, target.find('?')))) {
      Fail(400, "dot-segment in path");
      return false;
    }
    head.SetTarget(target);
    return true;
  }

  void Body(absl::string_view data) override { callbacks_->OnRequestBody(data); }

  int MessageComplete() override {
    callbacks_->OnRequestComplete();
    return HPE_PAUSED;
  }

  RequestDecoderCallbacks* callbacks_;
};

class ResponseDecoderImpl final : public ResponseDecoder, private LlhttpDecoder {
 public:
  ResponseDecoderImpl(ResponseDecoderCallbacks& callbacks, const DecoderLimits& limits)
      : LlhttpDecoder(HTTP_RESPONSE, limits), callbacks_(&callbacks) {
    capture_status_line_ = true;
  }

  // confgate::http::ResponseDecoder
  void ExpectResponse(absl::string_view request_method) override {
    head_request_ = request_method == "HEAD";
    ResumeParser();
  }
  size_t Feed(absl::string_view data) override { return FeedBytes(data); }
  void Reuse(ResponseDecoderCallbacks& callbacks, const DecoderLimits& limits) override {
    callbacks_ = &callbacks;
    limits_ = limits;
    scanner_.Reset();
  }
  void FeedEof() override {
    if (has_error_ || paused_) {
      return;
    }
    if (!in_message_) {
      return;
    }
    llhttp_errno_t rc = llhttp_finish(&parser_);
    if (has_error_) {
      return;
    }
    if (rc == HPE_PAUSED) {
      paused_ = true;
      return;
    }
    if (rc != HPE_OK || in_message_) {
      Fail(502, "upstream closed in the middle of a response");
    }
  }
  bool paused() const override { return paused_; }
  bool in_message() const override { return InMessage(); }
  bool has_error() const override { return has_error_; }
  const DecodeError& error() const override { return error_; }

 private:
  int HeadersComplete() override {
    int status = parser_.status_code;
    if (parser_.http_major != 1 || parser_.http_minor > 1) {
      return Fail(502, "unsupported HTTP version");
    }
    // RFC 9110 section 15: three digits, 100 to 599 (llhttp reads "0200" as 200).
    if (status < 100 || status > 599 || !StatusHasThreeDigits()) {
      return Fail(502, "invalid status code");
    }
    if (status == 101) {
      return Fail(502, "protocol upgrade is not supported");
    }
    // llhttp lets any byte but CR and LF through in the reason phrase, and we pass the phrase
    // on: a NUL or other control byte would reach the client's status line.
    if (!IsValidFieldValue(status_text_)) {
      return Fail(502, "invalid reason phrase");
    }
    ResponseHead head;
    head.status = status;
    head.reason = status_text_;
    head.version_minor = parser_.http_minor;
    if (!CheckFramingHeaders(&head.framing, &head.content_length)) {
      return -1;
    }
    if (head.version_minor == 0 && head.framing == BodyFraming::kChunked) {
      return Fail(502, "Transfer-Encoding in an HTTP/1.0 response");
    }
    head.headers = std::move(headers_);
    if (status >= 100 && status < 200) {
      // An interim response has no body (RFC 9110 section 15.2): what follows its head is the
      // next response's head. One that claims a body is broken; reading one would hand the
      // client a second answer.
      if (head.framing != BodyFraming::kNone) {
        return Fail(502, "interim response with a body");
      }
      if (head.version_minor == 0) {
        return Fail(502, "interim response in HTTP/1.0");
      }
      // Connection on an interim response says nothing of the connection after the final
      // one; llhttp would otherwise take "close" as the end and drop the final response.
      parser_.flags &= ~F_CONNECTION_CLOSE;
      interim_ = true;
      return 1;
    }
    bool no_body = head_request_ || status == 204 || status == 304;
    if (no_body) {
      head.framing = BodyFraming::kNone;
      head.content_length = 0;
    } else if (head.framing == BodyFraming::kNone) {
      head.framing = BodyFraming::kUntilClose;
    }
    head.keep_alive =
        head.framing != BodyFraming::kUntilClose && llhttp_should_keep_alive(&parser_) != 0;
    callbacks_->OnResponseHead(std::move(head));
    if (has_error_) {
      return -1;
    }
    return no_body ? 1 : 0;
  }

  void Body(absl::string_view data) override { callbacks_->OnResponseBody(data); }

  int MessageComplete() override {
    if (interim_) {
      return HPE_PAUSED;  // FeedBytes resumes and goes on to the final response
    }
    callbacks_->OnResponseComplete();
    return HPE_PAUSED;
  }

  ResponseDecoderCallbacks* callbacks_;
  bool head_request_ = false;
};

}  // namespace

std::unique_ptr<RequestDecoder> RequestDecoder::Create(RequestDecoderCallbacks& callbacks,
                                                       const DecoderLimits& limits) {
  return std::make_unique<RequestDecoderImpl>(callbacks, limits);
}

std::unique_ptr<ResponseDecoder> ResponseDecoder::Create(ResponseDecoderCallbacks& callbacks,
                                                         const DecoderLimits& limits) {
  return std::make_unique<ResponseDecoderImpl>(callbacks, limits);
}

}  // namespace confgate::http
