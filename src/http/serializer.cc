#include <charconv>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "confgate/http/codec.h"

namespace confgate::http {
namespace {

size_t HeadersSize(const HeaderMap& headers) {
  size_t size = 2;  // the final CRLF
  for (const HeaderMap::Entry& entry : headers.entries()) {
    size += entry.name.size() + entry.value.size() + 4;  // ": " and CRLF
  }
  return size;
}

char* Put(char* out, absl::string_view text) {
  std::memcpy(out, text.data(), text.size());
  return out + text.size();
}

char* PutHeaders(const HeaderMap& headers, char* out) {
  for (const HeaderMap::Entry& entry : headers.entries()) {
    out = Put(out, entry.name);
    *out++ = ':';
    *out++ = ' ';
    out = Put(out, entry.value);
    *out++ = '\r';
    *out++ = '\n';
  }
  *out++ = '\r';
  *out++ = '\n';
  return out;
}

constexpr absl::string_view kRequestVersion = " HTTP/1.1\r\n";
constexpr absl::string_view kResponseVersion = "HTTP/1.1 ";

// The status code's digits, in `buffer`.
absl::string_view StatusDigits(int status, char (&buffer)[16]) {
  std::to_chars_result result = std::to_chars(buffer, buffer + sizeof(buffer), status);
  return absl::string_view(buffer, static_cast<size_t>(result.ptr - buffer));
}

absl::string_view ReasonOf(const ResponseHead& head) {
  return head.reason.empty() ? ReasonPhrase(head.status) : absl::string_view(head.reason);
}

}  // namespace

size_t SerializedSize(const RequestHead& head) {
  return head.method.size() + 1 + head.target().size() + kRequestVersion.size() +
         HeadersSize(head.headers);
}

char* SerializeInto(const RequestHead& head, char* out) {
  out = Put(out, head.method);
  *out++ = ' ';
  out = Put(out, head.target());
  out = Put(out, kRequestVersion);
  return PutHeaders(head.headers, out);
}

size_t SerializedSize(const ResponseHead& head) {
  char digits[16];
  return kResponseVersion.size() + StatusDigits(head.status, digits).size() + 1 +
         ReasonOf(head).size() + 2 + HeadersSize(head.headers);
}

char* SerializeInto(const ResponseHead& head, char* out) {
  char digits[16];
  out = Put(out, kResponseVersion);
  out = Put(out, StatusDigits(head.status, digits));
  *out++ = ' ';
  out = Put(out, ReasonOf(head));
  *out++ = '\r';
  *out++ = '\n';
  return PutHeaders(head.headers, out);
}

namespace {

template <typename Head>
void AppendSerialized(const Head& head, std::string& out) {
  size_t start = out.size();
  out.resize(start + SerializedSize(head));
  SerializeInto(head, out.data() + start);
}

}  // namespace

void SerializeRequestHead(const RequestHead& head, std::string& out) {
  AppendSerialized(head, out);
}

void SerializeResponseHead(const ResponseHead& head, std::string& out) {
  AppendSerialized(head, out);
}

void AppendChunk(absl::string_view data, std::string& out) {
  if (data.empty()) {
    return;
  }
  absl::StrAppend(&out, absl::Hex(data.size()), "\r\n", data, "\r\n");
}

absl::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

}  // namespace confgate::http
