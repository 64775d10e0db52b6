#include "confgate/http/forwarding.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace confgate::http {

void RemoveHopByHopHeaders(HeaderMap& headers) {
  std::vector<std::string> named;
  for (const HeaderMap::Entry& entry : headers.entries()) {
    if (absl::EqualsIgnoreCase(entry.name, "connection")) {
      for (absl::string_view token : absl::StrSplit(entry.value, ',')) {
        token = absl::StripAsciiWhitespace(token);
        if (!token.empty()) {
          named.emplace_back(token);
        }
      }
    }
  }
  for (const std::string& name : named) {
    headers.Remove(name);
  }
  for (absl::string_view name : {"connection", "keep-alive", "proxy-connection", "te", "trailer",
                                 "upgrade", "transfer-encoding", "content-length"}) {
    headers.Remove(name);
  }
}

void SetFramingHeader(HeaderMap& headers, BodyFraming framing, uint64_t content_length) {
  switch (framing) {
    case BodyFraming::kContentLength:
      headers.Set("Content-Length", absl::StrCat(content_length));
      break;
    case BodyFraming::kChunked:
      headers.Set("Transfer-Encoding", "chunked");
      break;
    case BodyFraming::kNone:
    case BodyFraming::kUntilClose:
      break;
  }
}

bool IsAcceptableRequestId(absl::string_view id) {
  if (id.empty() || id.size() > 128) {
    return false;
  }
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.' &&
        c != ':') {
      return false;
    }
  }
  return true;
}

std::string GenerateRequestId(absl::BitGen& random) {
  uint64_t high = absl::Uniform<uint64_t>(random);
  uint64_t low = absl::Uniform<uint64_t>(random);
  // Version 4, variant 10xx.
  high = (high & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  low = (low & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", high >> 32, (high >> 16) & 0xffff,
                         high & 0xffff, low >> 48, low & 0xffffffffffffULL);
}

std::string PrepareUpstreamRequest(RequestHead& head, const ForwardingContext& context,
                                   absl::BitGen& random) {
  RemoveHopByHopHeaders(head.headers);
  // We answer Expect: 100-continue ourselves; the upstream gets the body without waiting.
  head.headers.Remove("expect");

  const std::string* forwarded_for = head.headers.Get("x-forwarded-for");
  std::string chain = forwarded_for != nullptr
                          ? absl::StrCat(*forwarded_for, ", ", context.client_address)
                          : std::string(context.client_address);
  head.headers.Set("X-Forwarded-For", std::move(chain));
  head.headers.Set("X-Forwarded-Proto", std::string(context.protocol));

  const std::string* incoming_id = head.headers.Get("x-request-id");
  std::string request_id = incoming_id != nullptr && IsAcceptableRequestId(*incoming_id)
                               ? *incoming_id
                               : GenerateRequestId(random);
  head.headers.Set("X-Request-Id", request_id);

  const std::string* via = head.headers.Get("via");
  head.headers.Set(
      "Via", via != nullptr ? absl::StrCat(*via, ", ", context.via) : std::string(context.via));
  return request_id;
}

void PrepareDownstreamResponse(ResponseHead& head, absl::string_view via) {
  RemoveHopByHopHeaders(head.headers);
  const std::string* existing = head.headers.Get("via");
  head.headers.Set("Via",
                   existing != nullptr ? absl::StrCat(*existing, ", ", via) : std::string(via));
}

}  // namespace confgate::http
