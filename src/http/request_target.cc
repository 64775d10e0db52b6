#include "http/request_target.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>

#include "absl/strings/ascii.h"

namespace confgate::http {

// True when a segment of `path` is "." or "..", however it is spelled: %2E for a dot,
// ";params" after it, a backslash or an encoded slash or backslash as the separator. Routes
// match the path as received, while many upstreams (servlet containers, most frameworks)
// resolve dot-segments first: "/v1/kv/../acl" would pass a /v1/kv/ route and be served as
// /acl. Config APIs never need them, so such a request is refused rather than normalized one
// way here and maybe another way upstream.
bool HasDotSegment(absl::string_view path) {
  // The common case: nothing that could spell a dot. (A loop: find_first_of() builds a table
  // first, which costs more than a short path.)
  if (std::none_of(path.begin(), path.end(), [](char c) { return c == '.' || c == '%'; })) {
    return false;
  }
  size_t dots = 0;
  bool only_dots = true;  // the segment's name (before any ';') is all dots so far
  bool in_params = false;
  for (size_t i = 0; i <= path.size(); ++i) {
    char c = i < path.size() ? path[i] : '/';
    if (c == '%' && i + 2 < path.size() && absl::ascii_isxdigit(path[i + 1]) &&
        absl::ascii_isxdigit(path[i + 2])) {
      int high = absl::ascii_isdigit(path[i + 1]) ? path[i + 1] - '0'
                                                  : absl::ascii_tolower(path[i + 1]) - 'a' + 10;
      int low = absl::ascii_isdigit(path[i + 2]) ? path[i + 2] - '0'
                                                 : absl::ascii_tolower(path[i + 2]) - 'a' + 10;
      c = static_cast<char>(high * 16 + low);
      i += 2;
    }
    if (c == '/' || c == '\\') {
      if (only_dots && (dots == 1 || dots == 2)) {
        return true;
      }
      dots = 0;
      only_dots = true;
      in_params = false;
    } else if (in_params) {
      continue;
    } else if (c == ';') {
      in_params = true;
    } else if (c == '.') {
      ++dots;
    } else {
      only_dots = false;
    }
  }
  return false;
}

// A request target is absolute-path ["?" query] (or absolute-form): no control bytes, no SP or
// DEL, and no fragment. llhttp lets HTAB and form feed through; a '#' would end the path for
// the upstream's parser while the dot-segment check and the routes saw more ("/a/..#").
bool HasForbiddenTargetByte(absl::string_view target) {
  const char* bytes = target.data();
  size_t size = target.size();
  size_t i = 0;
#if defined(__SSE2__)
  // 16 bytes at a time (every request's target passes here): a byte is forbidden when it is
  // below 0x21 (unsigned), DEL or '#'.
  const __m128i first_allowed = _mm_set1_epi8(0x21);
  const __m128i del = _mm_set1_epi8(0x7f);
  const __m128i hash = _mm_set1_epi8('#');
  for (; i + 16 <= size; i += 16) {
    __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + i));
    __m128i at_least_allowed = _mm_cmpeq_epi8(_mm_max_epu8(chunk, first_allowed), chunk);
    __m128i bad = _mm_or_si128(_mm_cmpeq_epi8(chunk, del), _mm_cmpeq_epi8(chunk, hash));
    if (_mm_movemask_epi8(bad) != 0 || _mm_movemask_epi8(at_least_allowed) != 0xffff) {
      return true;
    }
  }
#endif
  for (; i < size; ++i) {
    unsigned char byte = static_cast<unsigned char>(bytes[i]);
    if (byte <= 0x20 || byte == 0x7f || byte == '#') {
      return true;
    }
  }
  return false;
}

}  // namespace confgate::http
