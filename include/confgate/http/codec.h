// HTTP/1.1 message codec: bytes in, callbacks out; heads serialized into caller-owned strings.
// Knows nothing about sockets. llhttp is hidden in src/http/llhttp_codec.cc.
//
// Strictness (design.md "Proxying rules"): anything that could smuggle a request or desync a
// connection is an error: Content-Length with Transfer-Encoding, conflicting or malformed
// Content-Length, a Transfer-Encoding other than exactly "chunked", bad chunk sizes or
// extensions, bare CR or LF line endings, NUL/CR/LF in header values, whitespace before a colon,
// obs-fold, absolute-form targets that disagree with Host, HTTP/0.9 and versions other
// than 1.0/1.1. Requests whose path has a dot-segment ("/a/../b", also spelled %2E%2E, "..;x"
// or between backslashes) are refused, so route prefixes cannot be stepped around; responses
// whose reason phrase has control characters are refused, as it is passed on to the client.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "confgate/http/header_map.h"

namespace confgate::http {

// How a message body is delimited.
enum class BodyFraming { kNone, kContentLength, kChunked, kUntilClose };

// (AssignMembers, in request_head.cc, names every member but the target: a new one goes there
// too.)
struct RequestHead {
  RequestHead() = default;
  RequestHead(const RequestHead& other) { *this = other; }
  RequestHead& operator=(const RequestHead& other);
  // A move hands the text over with the target; the moved-from head is left with none.
  RequestHead(RequestHead&& other) noexcept { *this = std::move(other); }
  RequestHead& operator=(RequestHead&& other) noexcept;

  // The target in origin-form ("/path?query"; absolute-form is reduced to origin-form), its
  // path (up to '?') and its query (after the first '?', without it; empty when absent): views
  // of bytes in the head's own text (see HeaderMap), valid as long as the head.
  absl::string_view target() const { return target_; }
  absl::string_view path() const { return target_.substr(0, path_size_); }
  absl::string_view query() const {
    return path_size_ < target_.size() ? target_.substr(path_size_ + 1) : absl::string_view();
  }
  // Sets the target, kept in the head's text (where it is when it is in the text already, as
  // the codec's targets are).
  void SetTarget(absl::string_view origin_form);

  std::string method;
  int version_minor = 1;  // HTTP/1.<version_minor>
  // As received, hop-by-hop included. Its text holds the target's bytes too: assigning or
  // clearing it takes them away, so set the target again after doing so.
  HeaderMap headers;
  bool keep_alive = true;                    // from the version and Connection
  BodyFraming framing = BodyFraming::kNone;  // kNone, kContentLength or kChunked
  uint64_t content_length = 0;               // when framing == kContentLength
  bool expect_continue = false;              // "Expect: 100-continue"

 private:
  // Copies (from a const head) or moves (from an rvalue) every member but the target.
  template <typename Other>
  void AssignMembers(Other&& other);

  absl::string_view target_ = absl::string_view("", 0);
  size_t path_size_ = 0;
};

struct ResponseHead {
  int status = 0;
  std::string reason;
  int version_minor = 1;
  HeaderMap headers;
  bool keep_alive = true;  // the connection may carry another request after this response
  BodyFraming framing = BodyFraming::kNone;  // kNone for HEAD, 1xx, 204, 304
  uint64_t content_length = 0;               // when framing == kContentLength
};

struct DecoderLimits {
  size_t max_header_bytes = 32 * 1024;  // start line + fields + final CRLF
  size_t max_uri_bytes = 8 * 1024;      // request target
  uint64_t max_body_bytes = 0;          // decoded body; 0 = unlimited
};

// Why decoding stopped; `status` is the response to send the client (400, 413, 414, 431, 501)
// or, for a response decoder, 502.
struct DecodeError {
  int status = 400;
  std::string reason;  // short, for logs
};

class RequestDecoderCallbacks {
 public:
  virtual ~RequestDecoderCallbacks() = default;
  // The head arrived complete and passed validation. The callee may keep it (move from it):
  // passed by reference, a head is moved once, into whoever keeps it.
  virtual void OnRequestHead(RequestHead&& head) = 0;
  // Decoded body bytes (chunk framing removed). The view is valid only during the call.
  virtual void OnRequestBody(absl::string_view data) = 0;
  virtual void OnRequestComplete() = 0;
};

class ResponseDecoderCallbacks {
 public:
  virtual ~ResponseDecoderCallbacks() = default;
  // Final (non-1xx) head; the callee may move from it. Interim 1xx responses are consumed and
  // not reported.
  virtual void OnResponseHead(ResponseHead&& head) = 0;
  virtual void OnResponseBody(absl::string_view data) = 0;
  virtual void OnResponseComplete() = 0;
};

// Callbacks must not destroy the decoder while it is inside Feed()/FeedEof().
class RequestDecoder {
 public:
  virtual ~RequestDecoder() = default;
  static std::unique_ptr<RequestDecoder> Create(RequestDecoderCallbacks& callbacks,
                                                const DecoderLimits& limits);

  // Consumes bytes and returns how many. After a complete message the decoder pauses (so
  // pipelined requests are handled one at a time): it returns the bytes up to the end of that
  // message and consumes nothing more until Resume(). After an error it consumes nothing.
  virtual size_t Feed(absl::string_view data) = 0;
  virtual void Resume() = 0;
  // Hands a decoder that is between messages (not paused, not in a message, no error) to a new
  // connection: the next bytes it is fed start a message for `callbacks`, within `limits`.
  virtual void Reuse(RequestDecoderCallbacks& callbacks, const DecoderLimits& limits) = 0;
  virtual bool paused() const = 0;
  // Bytes of a message have been seen and the message is not complete yet.
  virtual bool in_message() const = 0;
  virtual bool has_error() const = 0;
  virtual const DecodeError& error() const = 0;
};

class ResponseDecoder {
 public:
  virtual ~ResponseDecoder() = default;
  static std::unique_ptr<ResponseDecoder> Create(ResponseDecoderCallbacks& callbacks,
                                                 const DecoderLimits& limits);

  // Called before each response with the method of the request it answers (HEAD has no body).
  // Also resumes a decoder paused after the previous response.
  virtual void ExpectResponse(absl::string_view request_method) = 0;
  // As RequestDecoder::Feed: pauses after a complete response; bytes beyond it are not consumed
  // (for a proxy, bytes after a response mean the connection can't be reused).
  virtual size_t Feed(absl::string_view data) = 0;
  // The peer closed: completes a close-delimited body, or records an error if a message was cut.
  virtual void FeedEof() = 0;
  // Hands a decoder that completed a response on a connection kept alive (no error, not in a
  // message) to another stream; ExpectResponse() then starts its next response.
  virtual void Reuse(ResponseDecoderCallbacks& callbacks, const DecoderLimits& limits) = 0;
  virtual bool paused() const = 0;
  virtual bool in_message() const = 0;
  virtual bool has_error() const = 0;
  virtual const DecodeError& error() const = 0;
};

// Serializers append to `out`. Heads are written as HTTP/1.1 with their header fields in order.
void SerializeRequestHead(const RequestHead& head, std::string& out);
void SerializeResponseHead(const ResponseHead& head, std::string& out);
// The same in two steps, for writers that own the memory (an evbuffer's free space): the
// size, then the bytes written at `out`; returns the end of what was written.
size_t SerializedSize(const RequestHead& head);
char* SerializeInto(const RequestHead& head, char* out);
size_t SerializedSize(const ResponseHead& head);
char* SerializeInto(const ResponseHead& head, char* out);
// One chunk of a chunked body (nothing for empty data) and the last-chunk marker.
void AppendChunk(absl::string_view data, std::string& out);
inline constexpr absl::string_view kLastChunk = "0\r\n\r\n";
// Reason phrase for a status code ("OK", "Bad Gateway", ...; "Unknown" otherwise).
absl::string_view ReasonPhrase(int status);

}  // namespace confgate::http
