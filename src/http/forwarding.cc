#include "confgate/http/forwarding.h"

#include <array>
#include <charconv>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace confgate::http {

namespace {

// End-to-end fields a Connection header must not take away: the upstream needs Host, and
// this proxy sets the others itself (a client naming X-Forwarded-For would otherwise drop what
// a proxy in front of us added).
bool IsForwardingField(FieldId id) {
  switch (id) {
    case FieldId::kHost:
    case FieldId::kVia:
    case FieldId::kXForwardedFor:
    case FieldId::kXForwardedProto:
    case FieldId::kXRealIp:
    case FieldId::kXRequestId:
      return true;
    default:
      return false;
  }
}

// The extra fields a Connection header names (usually just "close", or none: a field named
// "keep-alive" goes anyway).
using ConnectionNamed = absl::InlinedVector<std::string, 2>;

ConnectionNamed FieldsNamedByConnection(const HeaderMap& headers) {
  ConnectionNamed named;
  for (const HeaderMap::Entry& entry : headers.entries()) {
    // "keep-alive", what most upstreams send, names nothing that is not hop-by-hop already.
    if (entry.id != FieldId::kConnection || FieldNameEquals(entry.value, "keep-alive")) {
      continue;
    }
    // Split by hand: absl::StrSplit's machinery costs more than the usual one-token value.
    absl::string_view rest = entry.value;
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      absl::string_view token = absl::StripAsciiWhitespace(rest.substr(0, comma));
      rest = comma == absl::string_view::npos ? absl::string_view() : rest.substr(comma + 1);
      FieldId id = ClassifyFieldName(token);
      if (!token.empty() && !IsHopByHop(id) && !IsForwardingField(id)) {
        named.emplace_back(token);
      }
    }
  }
  return named;
}

bool IsNamed(const ConnectionNamed& named, absl::string_view name) {
  for (const std::string& entry : named) {
    if (FieldNameEquals(entry, name)) {
      return true;
    }
  }
  return false;
}

// Takes the first value of a field the caller is about to replace.
void TakeFirst(const HeaderMap::Entry& entry, std::optional<absl::string_view>& slot) {
  if (!slot.has_value()) {
    slot = entry.value;
  }
}

// Collects the values of a list field the caller is about to append to, in order (RFC 9110
// section 5.3). Keeping only the first would lose what a proxy in front added as a field of
// its own (HAProxy's "option forwardfor" does) and leave a client's forged X-Forwarded-For
// where the upstream expects that proxy's entry.
void Combine(const HeaderMap::Entry& entry, std::optional<std::string>& slot) {
  if (!slot.has_value()) {
    slot.emplace(entry.value);
  } else {
    absl::StrAppend(&*slot, ", ", entry.value);
  }
}

void AppendVia(HeaderMap& headers, std::optional<std::string> existing, absl::string_view via) {
  if (existing.has_value()) {
    absl::StrAppend(&*existing, ", ", via);
    headers.Add(FieldId::kVia, "Via", *existing);
  } else {
    headers.Add(FieldId::kVia, "Via", via);
  }
}

}  // namespace

void RemoveHopByHopHeaders(HeaderMap& headers) {
  ConnectionNamed named = FieldsNamedByConnection(headers);
  headers.RemoveIf([&named](const HeaderMap::Entry& entry) {
    return IsHopByHop(entry.id) || (!named.empty() && IsNamed(named, entry.name));
  });
}

void SetFramingHeader(HeaderMap& headers, BodyFraming framing, uint64_t content_length) {
  switch (framing) {
    case BodyFraming::kContentLength: {
      char digits[20];
      char* end = std::to_chars(digits, digits + sizeof(digits), content_length).ptr;
      headers.Set(FieldId::kContentLength, "Content-Length",
                  absl::string_view(digits, end - digits));
      break;
    }
    case BodyFraming::kChunked:
      headers.Set(FieldId::kTransferEncoding, "Transfer-Encoding", "chunked");
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

std::string GenerateRequestId(RequestIdRandom& random) {
  std::string id(kRequestIdSize, '-');
  WriteRequestId(random, id.data());
  return id;
}

void WriteRequestId(RequestIdRandom& random, char* id) {
  // The generator's own 64-bit words: absl::Uniform's range reduction is not needed for a
  // full-width value.
  uint64_t high = random();
  uint64_t low = random();
  // Version 4, variant 10xx.
  high = (high & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  low = (low & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  // 8-4-4-4-12 hex digits: each byte's two digits from one table, with dashes after bytes 4,
  // 6, 8 and 10.
  static constexpr auto kHexPairs = [] {
    std::array<std::array<char, 2>, 256> pairs{};
    constexpr char kDigits[] = "0123456789abcdef";
    for (int byte = 0; byte < 256; ++byte) {
      pairs[byte] = {kDigits[byte >> 4], kDigits[byte & 0xf]};
    }
    return pairs;
  }();
  char* out = id;
  auto put = [&out](uint64_t word, int first_byte, int bytes) {
    for (int byte = first_byte; byte < first_byte + bytes; ++byte) {
      std::memcpy(out, kHexPairs[(word >> (56 - 8 * byte)) & 0xff].data(), 2);
      out += 2;
    }
  };
  put(high, 0, 4);
  *out++ = '-';
  put(high, 4, 2);
  *out++ = '-';
  put(high, 6, 2);
  *out++ = '-';
  put(low, 0, 2);
  *out++ = '-';
  put(low, 2, 6);
}

absl::string_view PrepareUpstreamRequest(RequestHead& head, const ForwardingContext& context,
                                         RequestIdRandom& random) {
  // One pass takes out the hop-by-hop fields, Expect (we answer 100-continue ourselves; the
  // upstream gets the body without waiting) and the fields we replace, keeping the first value
  // of each replaced one.
  ConnectionNamed named = FieldsNamedByConnection(head.headers);
  // (The incoming id stays a view into the head's text: removing its field leaves the bytes.)
  std::optional<std::string> forwarded_for, via;
  std::optional<absl::string_view> incoming_id;
  bool has_host = false;
  head.headers.RemoveIf([&](const HeaderMap::Entry& entry) {
    if (IsHopByHop(entry.id) || (!named.empty() && IsNamed(named, entry.name))) {
      return true;
    }
    switch (entry.id) {
      case FieldId::kHost:
        has_host = true;
        return false;
      case FieldId::kXForwardedFor:
        Combine(entry, forwarded_for);
        return true;
      case FieldId::kXRequestId:
        TakeFirst(entry, incoming_id);
        return true;
      case FieldId::kVia:
        Combine(entry, via);
        return true;
      case FieldId::kExpect:
      case FieldId::kXForwardedProto:
      case FieldId::kXRealIp:
        return true;
      default:
        return false;
    }
  });
  if (!has_host) {
    head.headers.Add(FieldId::kHost, "Host", context.authority);
  }
  if (forwarded_for.has_value()) {
    absl::StrAppend(&*forwarded_for, ", ", context.client_address);
    head.headers.Add(FieldId::kXForwardedFor, "X-Forwarded-For", *forwarded_for);
  } else {
    head.headers.Add(FieldId::kXForwardedFor, "X-Forwarded-For", context.client_address);
  }
  head.headers.Add(FieldId::kXForwardedProto, "X-Forwarded-Proto", context.protocol);
  // Upstreams that were behind nginx often take X-Real-IP as the client's address: it is the
  // peer we saw, never what the client claims.
  head.headers.Add(FieldId::kXRealIp, "X-Real-IP", context.client_address);
  if (incoming_id.has_value() && IsAcceptableRequestId(*incoming_id)) {
    head.headers.Add(FieldId::kXRequestId, "X-Request-Id", *incoming_id);
  } else {
    char id[kRequestIdSize];
    WriteRequestId(random, id);
    head.headers.Add(FieldId::kXRequestId, "X-Request-Id", absl::string_view(id, sizeof(id)));
  }
  size_t id_index = head.headers.size() - 1;
  AppendVia(head.headers, std::move(via), context.via);
  return head.headers.entries()[id_index].value;
}

void PrepareDownstreamResponse(ResponseHead& head, absl::string_view via) {
  ConnectionNamed named = FieldsNamedByConnection(head.headers);
  std::optional<std::string> existing;
  head.headers.RemoveIf([&](const HeaderMap::Entry& entry) {
    if (IsHopByHop(entry.id) || (!named.empty() && IsNamed(named, entry.name))) {
      return true;
    }
    if (entry.id == FieldId::kVia) {
      Combine(entry, existing);
      return true;
    }
    return false;
  });
  AppendVia(head.headers, std::move(existing), via);
}

}  // namespace confgate::http
