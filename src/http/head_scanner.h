// The line scanner that every message head (and trailer section) passes before llhttp sees
// it. Header-only: its fast path is inlined into the codec's feed loop.
#pragma once

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <cstddef>
#include <limits>
#include <optional>

#include "absl/strings/string_view.h"
#include "confgate/http/codec.h"

namespace confgate::http {

// Scans the bytes of a message head before llhttp sees them: every line must end in CRLF
// (no bare CR or LF), no line may start with whitespace (obs-fold), and the head must fit the
// limits. It stops at the blank line that ends the head.
class HeadScanner {
 public:
  enum class Result { kNeedMore, kHeadEnd, kError };

  void Reset() {
    state_ = State::kLineStart;
    head_bytes_ = 0;
    line_number_ = 0;
    line_bytes_ = 0;
    started_ = false;
    whole_ = false;
  }

  // Scans from data[0]; on kHeadEnd `*used` is the number of bytes up to and including the
  // head's final LF, on kNeedMore all of data.
  Result Scan(absl::string_view data, size_t max_head, size_t max_first_line, size_t* used,
              DecodeError* error, int limit_status_head, int limit_status_line, int bad_status) {
    if (state_ == State::kLineStart && !started_) {
      if (std::optional<size_t> end = WholeHeadEnd(data, max_head, max_first_line)) {
        started_ = true;
        whole_ = true;
        *used = *end;
        return Result::kHeadEnd;
      }
    }
    for (size_t i = 0; i < data.size(); ++i) {
      if (state_ == State::kInLine) {
        // Most of a head is line content: skip to the next CR or LF in one step, with the
        // limits checked for the whole span (the same verdicts as byte by byte).
        size_t span = PlainSpan(data.substr(i));
        size_t head_room = max_head - head_bytes_;
        size_t line_room =
            line_number_ == 0 ? max_first_line - line_bytes_ : std::numeric_limits<size_t>::max();
        if (span > std::min(head_room, line_room)) {
          *error = head_room <= line_room && line_number_ != 0
                       ? DecodeError{limit_status_head, "head too large"}
                       : DecodeError{limit_status_line, "start line too long"};
          return Result::kError;
        }
        head_bytes_ += span;
        line_bytes_ += span;
        i += span;
        if (i == data.size()) {
          break;
        }
      }
      unsigned char c = static_cast<unsigned char>(data[i]);
      if (started_ && ++head_bytes_ > max_head) {
        // A start line that alone fills the head is a too-long URI, not too many fields.
        *error = line_number_ == 0 ? DecodeError{limit_status_line, "start line too long"}
                                   : DecodeError{limit_status_head, "head too large"};
        return Result::kError;
      }
      switch (state_) {
        case State::kLineStart:
          if (c == '\r') {
            state_ = State::kBlankCr;
          } else if (c == '\n') {
            *error = {bad_status, "bare LF"};
            return Result::kError;
          } else if (c == ' ' || c == '\t') {
            *error = {bad_status, started_ ? "obs-fold or whitespace at line start"
                                           : "whitespace before start line"};
            return Result::kError;
          } else {
            if (!started_) {
              started_ = true;
              head_bytes_ = 1;
            }
            state_ = State::kInLine;
            line_bytes_ = 1;
          }
          break;
        case State::kInLine:
          if (c == '\r') {
            state_ = State::kLineCr;
          } else if (c == '\n') {
            *error = {bad_status, "bare LF"};
            return Result::kError;
          } else if (line_number_ == 0 && ++line_bytes_ > max_first_line) {
            *error = {limit_status_line, "start line too long"};
            return Result::kError;
          }
          break;
        case State::kLineCr:
          if (c != '\n') {
            *error = {bad_status, "bare CR"};
            return Result::kError;
          }
          ++line_number_;
          state_ = State::kLineStart;
          break;
        case State::kBlankCr:
          if (c != '\n') {
            *error = {bad_status, "bare CR"};
            return Result::kError;
          }
          if (started_) {
            *used = i + 1;
            return Result::kHeadEnd;
          }
          // Empty lines before the start line are tolerated (RFC 9112 section 2.2).
          state_ = State::kLineStart;
          break;
      }
    }
    *used = data.size();
    return Result::kNeedMore;
  }

  // The next bytes are a trailer section (after a last chunk): field lines and the blank line
  // that ends them, scanned as strictly as a head's fields and counted against the same limit.
  void StartTrailers() {
    Reset();
    started_ = true;
    line_number_ = 1;  // no start line
  }

  bool started() const { return started_; }
  // Between lines, with no part of a line (a blank line's CR, say) seen.
  bool at_line_start() const { return state_ == State::kLineStart; }
  // The head was found whole, from the first byte given to Scan() to `*used`.
  bool whole() const { return whole_; }

 private:
  // The common case, a whole well-formed head at the start of `data`, line by line: where it
  // ends, or nullopt for anything else (a head cut short, blank lines before it, any fault,
  // any limit passed), which the byte-wise scan in Scan() then decides. Its verdicts are the
  // same: codec_test compares every head fed whole (this path) with the same bytes fed in
  // pieces (the byte-wise path).
  static std::optional<size_t> WholeHeadEnd(absl::string_view data, size_t max_head,
                                            size_t max_first_line) {
    size_t pos = 0;
    for (bool start_line = true;; start_line = false) {
      if (pos >= data.size()) {
        return std::nullopt;
      }
      char first = data[pos];
      if (first == '\r') {  // the blank line that ends the head
        if (start_line || pos + 1 >= data.size() || data[pos + 1] != '\n' || pos + 2 > max_head) {
          return std::nullopt;
        }
        return pos + 2;
      }
      if (first == '\n' || first == ' ' || first == '\t') {
        return std::nullopt;
      }
      size_t span = PlainSpan(data.substr(pos));
      size_t line_end = pos + span;
      if (line_end + 1 >= data.size() || data[line_end] != '\r' || data[line_end + 1] != '\n' ||
          (start_line && span > max_first_line) || line_end + 2 > max_head) {
        return std::nullopt;
      }
      pos = line_end + 2;
    }
  }

  // Bytes before the first CR or LF. Head lines are short (20 to 60 bytes): one pass that
  // looks for both, 16 bytes at a time where SSE2 is there (every x86-64), costs a third of
  // two memchr() calls a line.
  static size_t PlainSpan(absl::string_view data) {
    const char* bytes = data.data();
    size_t size = data.size();
    size_t i = 0;
#if defined(__SSE2__)
    if (size >= 16) {
      const __m128i cr = _mm_set1_epi8('\r');
      const __m128i lf = _mm_set1_epi8('\n');
      auto line_ends = [&](size_t at) {
        __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + at));
        return static_cast<unsigned>(
            _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(chunk, cr), _mm_cmpeq_epi8(chunk, lf))));
      };
      for (; i + 16 <= size; i += 16) {
        if (unsigned mask = line_ends(i)) {
          return i + static_cast<size_t>(__builtin_ctz(mask));
        }
      }
      if (i == size) {
        return size;
      }
      // The last 16 bytes, overlapping those already seen (their bits are dropped).
      unsigned seen = 16 - static_cast<unsigned>(size - i);
      unsigned mask = line_ends(size - 16) >> seen;
      return mask != 0 ? i + static_cast<size_t>(__builtin_ctz(mask)) : size;
    }
#endif
    for (; i < size; ++i) {
      if (bytes[i] == '\r' || bytes[i] == '\n') {
        return i;
      }
    }
    return size;
  }

  enum class State { kLineStart, kInLine, kLineCr, kBlankCr };
  State state_ = State::kLineStart;
  size_t head_bytes_ = 0;
  size_t line_number_ = 0;
  size_t line_bytes_ = 0;
  bool started_ = false;
  bool whole_ = false;
};

}  // namespace confgate::http
