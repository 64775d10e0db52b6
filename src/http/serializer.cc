#include <cstring>

#include "absl/strings/str_cat.h"
#include "confgate/http/codec.h"

namespace confgate::http {
namespace {

void AppendHeaders(const HeaderMap& headers, std::string& out) {
  // Sized once, then filled with plain copies: this runs for every head in both directions.
  size_t size = 2;  // the final CRLF
  for (const HeaderMap::Entry& entry : headers.entries()) {
    size += entry.name.size() + entry.value.size() + 4;  // ": " and CRLF
  }
  size_t start = out.size();
  out.resize(start + size);
  char* cursor = out.data() + start;
  for (const HeaderMap::Entry& entry : headers.entries()) {
    std::memcpy(cursor, entry.name.data(), entry.name.size());
    cursor += entry.name.size();
    *cursor++ = ':';
    *cursor++ = ' ';
    std::memcpy(cursor, entry.value.data(), entry.value.size());
    cursor += entry.value.size();
    *cursor++ = '\r';
    *cursor++ = '\n';
  }
  *cursor++ = '\r';
  *cursor = '\n';
}

}  // namespace

void SerializeRequestHead(const RequestHead& head, std::string& out) {
  absl::StrAppend(&out, head.method, " ", head.target, " HTTP/1.1\r\n");
  AppendHeaders(head.headers, out);
}

void SerializeResponseHead(const ResponseHead& head, std::string& out) {
  absl::StrAppend(&out, "HTTP/1.1 ", head.status, " ",
                  head.reason.empty() ? ReasonPhrase(head.status) : head.reason, "\r\n");
  AppendHeaders(head.headers, out);
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
