#include "http/chunk_line.h"

#include "absl/strings/ascii.h"

namespace confgate::http {
namespace {

bool IsTokenChar(unsigned char c) {
  // RFC 9110 section 5.6.2: tchar.
  return absl::ascii_isalnum(c) ||
         (c != 0 && absl::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) !=
                        absl::string_view::npos);
}

// Advances `pos` over a token; false when there is none.
bool SkipToken(absl::string_view line, size_t& pos) {
  size_t start = pos;
  while (pos < line.size() && IsTokenChar(static_cast<unsigned char>(line[pos]))) {
    ++pos;
  }
  return pos > start;
}

// Advances `pos` over a quoted-string (RFC 9110 section 5.6.4); false when it is malformed.
bool SkipQuotedString(absl::string_view line, size_t& pos) {
  ++pos;  // the opening quote
  while (pos < line.size()) {
    unsigned char c = static_cast<unsigned char>(line[pos]);
    if (c == '"') {
      ++pos;
      return true;
    }
    if (c == '\\') {
      if (pos + 1 >= line.size()) {
        return false;
      }
      c = static_cast<unsigned char>(line[pos + 1]);
      if (c != '\t' && (c < 0x20 || c == 0x7f)) {
        return false;
      }
      pos += 2;
      continue;
    }
    if (c != '\t' && (c < 0x20 || c == 0x7f)) {
      return false;
    }
    ++pos;
  }
  return false;
}

}  // namespace

bool ParseChunkLine(absl::string_view line, absl::string_view* size_digits) {
  if (line.size() < 3 || line.substr(line.size() - 2) != "\r\n") {
    return false;  // bare LF, or no size
  }
  absl::string_view body = line.substr(0, line.size() - 2);
  size_t pos = 0;
  while (pos < body.size() && absl::ascii_isxdigit(static_cast<unsigned char>(body[pos]))) {
    ++pos;
  }
  if (pos == 0) {
    return false;
  }
  *size_digits = body.substr(0, pos);
  while (pos < body.size()) {
    if (body[pos] != ';') {
      return false;
    }
    ++pos;
    if (!SkipToken(body, pos)) {
      return false;
    }
    if (pos < body.size() && body[pos] == '=') {
      ++pos;
      bool valid = pos < body.size() && body[pos] == '"' ? SkipQuotedString(body, pos)
                                                         : SkipToken(body, pos);
      if (!valid) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace confgate::http
