// The codec over llhttp. llhttp does the tokenizing; we add the checks that keep a proxy from
// being desynchronized: a strict CRLF/obs-fold scan of every head, and semantic checks of the
// framing headers once a head is complete.
#include <llhttp.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "confgate/http/codec.h"
#include "http/llhttp_sse42.h"

namespace confgate::http {
namespace {

#if defined(CONFGATE_LLHTTP_SSE42)
const bool kCpuHasSse42 = CpuHasSse42();
#endif

// llhttp_execute(), by the SSE4.2 copy of the parser where this CPU runs it. (llhttp_execute
// is nothing but the call of the parser's own execute function.)
llhttp_errno_t ExecuteLlhttp(llhttp_t* parser, const char* data, size_t length) {
#if defined(CONFGATE_LLHTTP_SSE42)
  if (kCpuHasSse42) {
    return static_cast<llhttp_errno_t>(
        confgate_sse42_llhttp__internal_execute(parser, data, data + length));
  }
#endif
  return llhttp_execute(parser, data, length);
}

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

  bool started() const { return started_; }
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

// A Content-Length value: 1 to 19 decimal digits and nothing else (no sign, no spaces, no
// list), so it cannot overflow and no two parsers can read it differently.
std::optional<uint64_t> ParseContentLength(absl::string_view text) {
  if (text.empty() || text.size() > 19) {
    return std::nullopt;
  }
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value;
}

// Room for the fields of a typical message before the header list grows.
constexpr size_t kTypicalHeaderCount = 16;

// Shared machinery of the request and response decoders.
class LlhttpDecoder {
 protected:
  LlhttpDecoder(llhttp_type_t type, const DecoderLimits& limits) : limits_(limits) {
    llhttp_init(&parser_, type, &Settings());
    parser_.data = this;
    bad_status_ = type == HTTP_REQUEST ? 400 : 502;
  }
  virtual ~LlhttpDecoder() = default;

  // The callbacks find their decoder through parser->data, so every decoder shares one table
  // (an idle keep-alive connection keeps its decoder: a table each would cost ~170 bytes).
  static const llhttp_settings_t& Settings() {
    static const llhttp_settings_t settings = [] {
      llhttp_settings_t table;
      llhttp_settings_init(&table);
      table.on_message_begin = &LlhttpDecoder::OnMessageBegin;
      table.on_url = &LlhttpDecoder::OnUrl;
      table.on_status = &LlhttpDecoder::OnStatus;
      table.on_header_field = &LlhttpDecoder::OnHeaderField;
      table.on_header_value = &LlhttpDecoder::OnHeaderValue;
      table.on_headers_complete = &LlhttpDecoder::OnHeadersComplete;
      table.on_body = &LlhttpDecoder::OnBody;
      table.on_message_complete = &LlhttpDecoder::OnMessageComplete;
      return table;
    }();
    return settings;
  }

  virtual int HeadersComplete() = 0;  // 0, 1 (no body) or -1 (error_ set)
  virtual void Body(absl::string_view data) = 0;
  virtual int MessageComplete() = 0;  // HPE_PAUSED, or 0 to continue (interim responses)

  size_t FeedBytes(absl::string_view data) {
    if (has_error_ || paused_) {
      return 0;
    }
    size_t total = 0;
    while (total < data.size()) {
      absl::string_view rest = data.substr(total);
      size_t parse_len = rest.size();
      if (!head_done_) {
        size_t used = 0;
        HeadScanner::Result result = scanner_.Scan(
            rest, limits_.max_header_bytes, limits_.max_uri_bytes + 32, &used, &error_,
            bad_status_ == 400 ? 431 : 502, bad_status_ == 400 ? 414 : 502, bad_status_);
        if (result == HeadScanner::Result::kError) {
          has_error_ = true;
          return total;
        }
        if (scanner_.started()) {
          in_message_ = true;
        }
        if (result == HeadScanner::Result::kHeadEnd) {
          head_done_ = true;
          if (scanner_.whole()) {
            whole_head_ = rest.substr(0, used);
          }
        }
      }
      llhttp_errno_t rc = ExecuteLlhttp(&parser_, rest.data(), parse_len);
      // The spans of this call are in the fields' text now; none may point at `data` later.
      whole_head_ = absl::string_view();
      whole_head_copy_ = nullptr;
      if (has_error_) {
        return total;
      }
      if (rc == HPE_OK) {
        total = data.size();
        break;
      }
      if (rc == HPE_PAUSED) {
        const char* stop = llhttp_get_error_pos(&parser_);
        total += static_cast<size_t>(stop - rest.data());
        if (interim_) {
          // A 1xx response was consumed; parse the final response that follows.
          interim_ = false;
          llhttp_resume(&parser_);
          continue;
        }
        paused_ = true;
        break;
      }
      SetLlhttpError(rc);
      return total;
    }
    return total;
  }

  void SetLlhttpError(llhttp_errno_t rc) {
    has_error_ = true;
    if (rc == HPE_USER && error_.reason.empty()) {
      error_ = {bad_status_, "rejected"};
    } else if (rc != HPE_USER) {
      const char* reason = llhttp_get_error_reason(&parser_);
      error_ = {bad_status_, reason != nullptr ? reason : llhttp_errno_name(rc)};
    }
  }

  int Fail(int status, std::string reason) {
    has_error_ = true;
    error_ = {status, std::move(reason)};
    return -1;
  }

  void ResumeParser() {
    if (paused_) {
      paused_ = false;
      llhttp_resume(&parser_);
    }
  }

  // Checks shared by requests and responses; fills framing from the framing headers. Control
  // characters in values are llhttp's to reject (codec_test's hostile cases hold it to that);
  // names were named (or found invalid) by FinishField().
  bool CheckFramingHeaders(BodyFraming* framing, uint64_t* content_length) {
    std::optional<uint64_t> length;
    int transfer_encodings = 0;
    bool chunked = false;
    for (const HeaderMap::Entry& entry : headers_.entries()) {
      if (entry.id == FieldId::kInvalid) {
        Fail(bad_status_, entry.name.empty() ? "empty header name" : "invalid header name");
        return false;
      }
      if (entry.id == FieldId::kContentLength) {
        std::optional<uint64_t> parsed = ParseContentLength(entry.value);
        if (!parsed.has_value()) {
          Fail(bad_status_, "malformed Content-Length");
          return false;
        }
        uint64_t value = *parsed;
        if (length.has_value() && *length != value) {
          Fail(bad_status_, "conflicting Content-Length");
          return false;
        }
        length = value;
      } else if (entry.id == FieldId::kTransferEncoding) {
        ++transfer_encodings;
        chunked = absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(entry.value), "chunked");
        if (!chunked || transfer_encodings > 1) {
          Fail(bad_status_, "unsupported Transfer-Encoding");
          return false;
        }
      }
    }
    if (length.has_value() && transfer_encodings > 0) {
      Fail(bad_status_, "Content-Length with Transfer-Encoding");
      return false;
    }
    if (chunked) {
      *framing = BodyFraming::kChunked;
    } else if (length.has_value()) {
      *framing = BodyFraming::kContentLength;
      *content_length = *length;
    } else {
      *framing = BodyFraming::kNone;
    }
    return true;
  }

  // The field being parsed is complete. Fields are parsed straight into the head's list (no
  // intermediate strings to copy from), and named (FieldId) here, once.
  void FinishField() {
    if (field_open_) {
      HeaderMap::Entry& field = headers_.last();
      // llhttp refuses every byte of a name that is not a token character but SP (before the
      // colon or inside the name); codec_test tries every byte value in names to hold it to
      // that. So only SP is looked for here, not every byte checked twice, and only in names
      // other than the known ones (SP matches no byte of those, whatever its case).
      field.id = field.name.empty() ? FieldId::kInvalid : ClassifyValidFieldName(field.name);
      if (field.id == FieldId::kOther &&
          std::memchr(field.name.data(), ' ', field.name.size()) != nullptr) {
        field.id = FieldId::kInvalid;
      }
      // llhttp keeps trailing whitespace of values; RFC 9110 says it is not part of the value.
      // Most values have none: look at the ends before stripping.
      absl::string_view& value = field.value;
      if (!value.empty() && (absl::ascii_isspace(static_cast<unsigned char>(value.back())) ||
                             absl::ascii_isspace(static_cast<unsigned char>(value.front())))) {
        value = absl::StripAsciiWhitespace(value);
      }
    }
    field_open_ = false;
    have_value_ = false;
  }
  // The request target as received so far.
  absl::string_view url() const { return url_in_text_.empty() ? url_ : url_in_text_; }
  void OpenField() {
    if (!field_open_) {
      headers_.AddEmpty();
      field_open_ = true;
    }
  }

  llhttp_t parser_;
  DecoderLimits limits_;
  HeadScanner scanner_;
  int bad_status_;
  bool has_error_ = false;
  DecodeError error_;
  bool paused_ = false;
  bool in_message_ = false;
  bool head_done_ = false;
  bool interim_ = false;
  std::string url_;                // the target in pieces, or
  absl::string_view url_in_text_;  // a whole head's target, in headers_' text
  std::string status_text_;
  // The head being parsed when it came whole in one piece (empty otherwise), valid during one
  // llhttp call, and its copy in headers_' text.
  absl::string_view whole_head_;
  const char* whole_head_copy_ = nullptr;
  bool field_open_ = false;  // the last entry of headers_ is still being parsed
  bool have_value_ = false;  // ... and its value has started
  HeaderMap headers_;
  uint64_t body_bytes_ = 0;

 private:
  static LlhttpDecoder* Self(llhttp_t* parser) { return static_cast<LlhttpDecoder*>(parser->data); }

  static int OnMessageBegin(llhttp_t* parser) {
    LlhttpDecoder* self = Self(parser);
    self->in_message_ = true;
    self->url_.clear();
    self->url_in_text_ = absl::string_view();
    self->status_text_.clear();
    self->field_open_ = false;
    self->have_value_ = false;
    self->headers_.Clear();
    self->headers_.Reserve(kTypicalHeaderCount);
    if (!self->whole_head_.empty()) {
      self->whole_head_copy_ = self->headers_.AddText(self->whole_head_).data();
    }
    self->body_bytes_ = 0;
    return 0;
  }
  // A span of the head: where the head came whole, the same bytes in its copy in the fields'
  // text (which then take views of it instead of copies of their own).
  absl::string_view HeadSpan(const char* at, size_t length) const {
    if (whole_head_copy_ != nullptr && at >= whole_head_.data() &&
        at + length <= whole_head_.data() + whole_head_.size()) {
      return absl::string_view(whole_head_copy_ + (at - whole_head_.data()), length);
    }
    return absl::string_view(at, length);
  }
  static int OnUrl(llhttp_t* parser, const char* at, size_t length) {
    LlhttpDecoder* self = Self(parser);
    if (self->url().size() + length > self->limits_.max_uri_bytes) {
      return self->Fail(self->bad_status_ == 400 ? 414 : 502, "URI too long");
    }
    absl::string_view span = self->HeadSpan(at, length);
    if (span.data() != at && self->url().empty()) {
      self->url_in_text_ = span;  // a whole head's: a view of its copy
    } else {
      if (!self->url_in_text_.empty()) {
        self->url_.assign(self->url_in_text_.data(), self->url_in_text_.size());
        self->url_in_text_ = absl::string_view();
      }
      self->url_.append(at, length);
    }
    return 0;
  }

  static int OnStatus(llhttp_t* parser, const char* at, size_t length) {
    Self(parser)->status_text_.append(at, length);
    return 0;
  }
  static int OnHeaderField(llhttp_t* parser, const char* at, size_t length) {
    LlhttpDecoder* self = Self(parser);
    if (self->have_value_) {
      self->FinishField();
    }
    self->OpenField();
    self->headers_.AppendToLastName(self->HeadSpan(at, length));
    return 0;
  }
  static int OnHeaderValue(llhttp_t* parser, const char* at, size_t length) {
    LlhttpDecoder* self = Self(parser);
    self->OpenField();
    self->headers_.AppendToLastValue(self->HeadSpan(at, length));
    self->have_value_ = true;
    return 0;
  }
  static int OnHeadersComplete(llhttp_t* parser) {
    LlhttpDecoder* self = Self(parser);
    self->FinishField();
    int result = self->HeadersComplete();
    self->url_in_text_ = absl::string_view();  // the head (and its text) has gone its way
    return result;
  }
  static int OnBody(llhttp_t* parser, const char* at, size_t length) {
    LlhttpDecoder* self = Self(parser);
    self->body_bytes_ += length;
    if (self->limits_.max_body_bytes > 0 && self->body_bytes_ > self->limits_.max_body_bytes) {
      return self->Fail(self->bad_status_ == 400 ? 413 : 502, "body too large");
    }
    self->Body(absl::string_view(at, length));
    return self->has_error_ ? -1 : 0;
  }
  static int OnMessageComplete(llhttp_t* parser) {
    LlhttpDecoder* self = Self(parser);
    self->in_message_ = false;
    self->head_done_ = false;
    self->scanner_.Reset();
    return self->MessageComplete();
  }
};

class RequestDecoderImpl final : public RequestDecoder, private LlhttpDecoder {
 public:
  RequestDecoderImpl(RequestDecoderCallbacks& callbacks, const DecoderLimits& limits)
      : LlhttpDecoder(HTTP_REQUEST, limits), callbacks_(&callbacks) {}

  // confgate::http::RequestDecoder
  size_t Feed(absl::string_view data) override { return FeedBytes(data); }
  void Resume() override { ResumeParser(); }
  void Reuse(RequestDecoderCallbacks& callbacks, const DecoderLimits& limits) override {
    callbacks_ = &callbacks;
    limits_ = limits;
  }
  bool paused() const override { return paused_; }
  bool in_message() const override { return in_message_; }
  bool has_error() const override { return has_error_; }
  const DecodeError& error() const override { return error_; }

 private:
  int HeadersComplete() override {
    RequestHead head;
    head.method = llhttp_method_name(static_cast<llhttp_method_t>(parser_.method));
    if (parser_.http_major != 1 || parser_.http_minor > 1) {
      return Fail(400, "unsupported HTTP version");
    }
    head.version_minor = parser_.http_minor;
    if (head.method == "CONNECT") {
      return Fail(400, "CONNECT is not supported");
    }
    if (!CheckFramingHeaders(&head.framing, &head.content_length)) {
      return -1;
    }
    head.headers = std::move(headers_);  // before SetTarget(): the target is kept in its text
    int hosts = 0;
    for (const HeaderMap::Entry& entry : head.headers.entries()) {
      hosts += entry.id == FieldId::kHost;
    }
    if (hosts > 1 || (hosts == 0 && head.version_minor == 1)) {
      return Fail(400, "missing or repeated Host");
    }
    if (!SetTarget(head)) {
      return -1;
    }
    if (head.framing == BodyFraming::kContentLength && limits_.max_body_bytes > 0 &&
        head.content_length > limits_.max_body_bytes) {
      return Fail(413, "body too large");
    }
    head.keep_alive = llhttp_should_keep_alive(&parser_) != 0;
    const absl::string_view* expect = head.headers.Get(FieldId::kExpect);
    head.expect_continue = expect != nullptr && absl::EqualsIgnoreCase(*expect, "100-continue");
    // We strip Upgrade and never switch protocols, so the bytes after this request are HTTP.
    parser_.upgrade = 0;
    callbacks_->OnRequestHead(std::move(head));
    return 0;
  }

  bool SetTarget(RequestHead& head) {
    absl::string_view url = this->url();
    if (!url.empty() && url[0] == '/') {
      return SplitTarget(url, head);  // origin-form: nearly every request
    }
    std::string target(url);
    if (absl::StartsWithIgnoreCase(target, "http://") ||
        absl::StartsWithIgnoreCase(target, "https://")) {
      size_t scheme_end = target.find("://") + 3;
      size_t path_start = target.find_first_of("/?", scheme_end);
      std::string authority = target.substr(scheme_end, path_start - scheme_end);
      const absl::string_view* host = head.headers.Get(FieldId::kHost);
      if (authority.empty() || host == nullptr || !absl::EqualsIgnoreCase(authority, *host)) {
        Fail(400, "absolute-form target disagrees with Host");
        return false;
      }
      target = path_start == std::string::npos ? "/" : target.substr(path_start);
      if (target[0] == '?') {
        target = "/" + target;
      }
    }
    if (target.empty() || target[0] != '/') {
      Fail(400, "request target must be origin-form");
      return false;
    }
    return SplitTarget(target, head);
  }

  // Sets the head's target (and so its path and query) from an origin-form target; one of a
  // whole head is in the head's text already and is not copied again.
  bool SplitTarget(absl::string_view target, RequestHead& head) {
    if (HasDotSegment(target.substr(0, target.find('?')))) {
      Fail(400, "dot-segment in path");
      return false;
    }
    head.SetTarget(target);
    return true;
  }

  void Body(absl::string_view data) override { callbacks_->OnRequestBody(data); }

  int MessageComplete() override {
    callbacks_->OnRequestComplete();
    return HPE_PAUSED;
  }

  RequestDecoderCallbacks* callbacks_;
};

class ResponseDecoderImpl final : public ResponseDecoder, private LlhttpDecoder {
 public:
  ResponseDecoderImpl(ResponseDecoderCallbacks& callbacks, const DecoderLimits& limits)
      : LlhttpDecoder(HTTP_RESPONSE, limits), callbacks_(&callbacks) {}

  // confgate::http::ResponseDecoder
  void ExpectResponse(absl::string_view request_method) override {
    head_request_ = request_method == "HEAD";
    ResumeParser();
  }
  size_t Feed(absl::string_view data) override { return FeedBytes(data); }
  void Reuse(ResponseDecoderCallbacks& callbacks, const DecoderLimits& limits) override {
    callbacks_ = &callbacks;
    limits_ = limits;
  }
  void FeedEof() override {
    if (has_error_ || paused_) {
      return;
    }
    if (!in_message_) {
      return;
    }
    llhttp_errno_t rc = llhttp_finish(&parser_);
    if (has_error_) {
      return;
    }
    if (rc == HPE_PAUSED) {
      paused_ = true;
      return;
    }
    if (rc != HPE_OK || in_message_) {
      Fail(502, "upstream closed in the middle of a response");
    }
  }
  bool paused() const override { return paused_; }
  bool in_message() const override { return in_message_; }
  bool has_error() const override { return has_error_; }
  const DecodeError& error() const override { return error_; }

 private:
  int HeadersComplete() override {
    int status = parser_.status_code;
    if (parser_.http_major != 1 || parser_.http_minor > 1) {
      return Fail(502, "unsupported HTTP version");
    }
    if (status == 101) {
      return Fail(502, "protocol upgrade is not supported");
    }
    // llhttp lets any byte but CR and LF through in the reason phrase, and we pass the phrase
    // on: a NUL or other control byte would reach the client's status line.
    if (!IsValidFieldValue(status_text_)) {
      return Fail(502, "invalid reason phrase");
    }
    ResponseHead head;
    head.status = status;
    head.reason = status_text_;
    head.version_minor = parser_.http_minor;
    if (!CheckFramingHeaders(&head.framing, &head.content_length)) {
      return -1;
    }
    head.headers = std::move(headers_);
    if (status >= 100 && status < 200) {
      interim_ = true;
      return 0;
    }
    bool no_body = head_request_ || status == 204 || status == 304;
    if (no_body) {
      head.framing = BodyFraming::kNone;
      head.content_length = 0;
    } else if (head.framing == BodyFraming::kNone) {
      head.framing = BodyFraming::kUntilClose;
    }
    head.keep_alive =
        head.framing != BodyFraming::kUntilClose && llhttp_should_keep_alive(&parser_) != 0;
    callbacks_->OnResponseHead(std::move(head));
    if (has_error_) {
      return -1;
    }
    return no_body ? 1 : 0;
  }

  void Body(absl::string_view data) override { callbacks_->OnResponseBody(data); }

  int MessageComplete() override {
    if (interim_) {
      return HPE_PAUSED;  // FeedBytes resumes and goes on to the final response
    }
    callbacks_->OnResponseComplete();
    return HPE_PAUSED;
  }

  ResponseDecoderCallbacks* callbacks_;
  bool head_request_ = false;
};

}  // namespace

std::unique_ptr<RequestDecoder> RequestDecoder::Create(RequestDecoderCallbacks& callbacks,
                                                       const DecoderLimits& limits) {
  return std::make_unique<RequestDecoderImpl>(callbacks, limits);
}

std::unique_ptr<ResponseDecoder> ResponseDecoder::Create(ResponseDecoderCallbacks& callbacks,
                                                         const DecoderLimits& limits) {
  return std::make_unique<ResponseDecoderImpl>(callbacks, limits);
}

}  // namespace confgate::http
