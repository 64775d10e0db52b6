// Header rewriting for proxied messages (design.md "Proxying rules"): hop-by-hop headers out,
// X-Forwarded-For / X-Forwarded-Proto / X-Real-IP / X-Request-Id / Via in. Pure functions over
// heads.
#pragma once

#include <string>

#include "absl/random/random.h"
#include "absl/strings/string_view.h"
#include "confgate/http/codec.h"

namespace confgate::http {

// Removes Connection and every header it names, Keep-Alive, Proxy-Connection, TE, Trailer,
// Upgrade, Proxy-Authorization, Proxy-Authenticate, Proxy (httpoxy), and the framing headers
// (Transfer-Encoding, Content-Length), which each hop sets for itself.
void RemoveHopByHopHeaders(HeaderMap& headers);

// Writes the framing header for `framing` (Content-Length or Transfer-Encoding: chunked).
void SetFramingHeader(HeaderMap& headers, BodyFraming framing, uint64_t content_length);

// A request id we pass on as is: 1-128 characters from [A-Za-z0-9._:-].
bool IsAcceptableRequestId(absl::string_view id);
// Request ids must be unique, not unpredictable (they are no secret), so they come from a fast
// generator (PCG) seeded from the OS, not from absl::BitGen's cryptographic-strength Randen,
// which cost more than a tenth of the header rewriting.
using RequestIdRandom = absl::InsecureBitGen;
// A random version-4 UUID.
std::string GenerateRequestId(RequestIdRandom& random);
// The same, written into the kRequestIdSize bytes at `id`.
inline constexpr size_t kRequestIdSize = 36;
void WriteRequestId(RequestIdRandom& random, char* id);

struct ForwardingContext {
  absl::string_view client_address;  // the peer's IP, without port
  absl::string_view protocol;        // "http" or "https"
  absl::string_view via;             // e.g. "1.1 confgate"
  // The Host to send when the request has none (HTTP/1.0): the address the client reached.
  absl::string_view authority;
};

// Rewrites a client request for the upstream: hop-by-hop fields and Expect out (a Connection
// field never takes Host or the fields set here with it); Host added from `authority` when the
// request has none, as every HTTP/1.1 request must carry one; the peer's
// address appended to X-Forwarded-For (every incoming X-Forwarded-For field combined first, so
// the last element is always the peer); X-Forwarded-Proto and X-Real-IP replaced by what this
// hop saw; an acceptable incoming X-Request-Id kept, else a new one; Via appended. Returns the
// request id it carries afterwards: the X-Request-Id field's value, valid until the next change
// to head.headers.
absl::string_view PrepareUpstreamRequest(RequestHead& head, const ForwardingContext& context,
                                         RequestIdRandom& random);

// Rewrites an upstream response for the client: hop-by-hop headers removed, Via appended.
// Framing headers are set by the caller, which knows how the body will be sent.
void PrepareDownstreamResponse(ResponseHead& head, absl::string_view via);

}  // namespace confgate::http
