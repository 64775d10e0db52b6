// The chunk-size line of a chunked body, checked by us rather than by llhttp: llhttp 8.1
// refuses a second extension after a valued one ("5;a=b;c=d"), which RFC 9112 allows.
#pragma once

#include <cstddef>

#include "absl/strings/string_view.h"

namespace confgate::http {

// A chunk-size line longer than this (extensions included) is refused.
inline constexpr size_t kMaxChunkLineBytes = 4096;

// `line` is one whole line, its LF included. On success returns true and sets `size_digits` to
// the chunk size's hex digits (a view into `line`). The grammar (RFC 9112 section 7.1.1, with
// no optional whitespace, as llhttp itself):
//   1*HEXDIG *( ";" token [ "=" ( token / quoted-string ) ] ) CRLF
bool ParseChunkLine(absl::string_view line, absl::string_view* size_digits);

}  // namespace confgate::http
