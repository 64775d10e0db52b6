// The machinery that the request and response decoders share: llhttp's callbacks, the head
// and trailer scanner in front of it, our own chunk-size lines, framing checks. Private to the
// codec (src/http/llhttp_codec.cc); llhttp stays out of include/.
#pragma once

#include <llhttp.h>

#include <cstring>
#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "confgate/http/codec.h"
#include "http/chunk_line.h"
#include "http/head_scanner.h"
#include "http/llhttp_sse42.h"

namespace confgate::http::internal {

#if defined(CONFGATE_LLHTTP_SSE42)
extern const bool kCpuHasSse42;
#endif

// llhttp_execute(), by the SSE4.2 copy of the parser where this CPU runs it. (llhttp_execute
// is nothing but the call of the parser's own execute function.)
inline llhttp_errno_t ExecuteLlhttp(llhttp_t* parser, const char* data, size_t length) {
#if defined(CONFGATE_LLHTTP_SSE42)
  if (kCpuHasSse42) {
    return static_cast<llhttp_errno_t>(
        confgate_sse42_llhttp__internal_execute(parser, data, data + length));
  }
#endif
  return llhttp_execute(parser, data, length);
}

// A Content-Length value: 1 to 19 decimal digits and nothing else (no sign, no spaces, no
// list), so it cannot overflow and no two parsers can read it differently.
std::optional<uint64_t> ParseContentLength(absl::string_view text);

// Room for the fields of a typical message before the header list grows.
inline constexpr size_t kTypicalHeaderCount = 16;

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
      table.on_chunk_header = &LlhttpDecoder::OnChunkHeader;
      table.on_chunk_complete = &LlhttpDecoder::OnChunkComplete;
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
      if (in_chunk_line_) {
        size_t used = 0;
        bool ok = FeedChunkLine(rest, &used);
        total += used;
        if (!ok) {
          return total;
        }
        continue;
      }
      if (!head_done_) {
        if (capture_status_line_ && status_line_size_ < sizeof(status_line_)) {
          CaptureStatusLine(rest);
        }
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
      llhttp_errno_t rc = ExecuteLlhttp(&parser_, rest.data(), rest.size());
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
      if (rc != HPE_PAUSED) {
        SetLlhttpError(rc);
        return total;
      }
      total += static_cast<size_t>(llhttp_get_error_pos(&parser_) - rest.data());
      if (!ResumeInsideMessage()) {
        paused_ = true;  // a message is complete
        break;
      }
    }
    return total;
  }

  // A message is under way, or a line of one (a blank line's CR before a start line) is.
  bool InMessage() const { return in_message_ || !scanner_.at_line_start(); }

  void CaptureStatusLine(absl::string_view data) {
    for (char c : data) {
      if (status_line_size_ == sizeof(status_line_)) {
        return;
      }
      if (status_line_size_ == 0 && (c == '\r' || c == '\n')) {
        continue;  // blank lines before the status line
      }
      status_line_[status_line_size_++] = c;
    }
  }
  // "HTTP/1.x " + three digits + SP or the line's end.
  bool StatusHasThreeDigits() const {
    if (status_line_size_ != sizeof(status_line_)) {
      return false;
    }
    for (int i = 9; i < 12; ++i) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(status_line_[i]))) {
        return false;
      }
    }
    char after = status_line_[12];
    return after == ' ' || after == '\r' || after == '\n';
  }

  // After a pause of our own inside a message: sets up what comes next and resumes llhttp.
  // False for the pause at the end of a message, which stays.
  bool ResumeInsideMessage() {
    if (interim_) {
      // A 1xx response was consumed; parse the final response that follows.
      interim_ = false;
    } else if (trailers_next_) {
      // The last chunk: what follows is the trailer section, which goes through the scanner
      // first, like a head.
      trailers_next_ = false;
      in_trailers_ = true;
      head_done_ = false;
      scanner_.StartTrailers();
      headers_.Clear();
    } else if (chunk_line_next_) {
      chunk_line_next_ = false;
      in_chunk_line_ = true;
    } else {
      return false;
    }
    llhttp_resume(&parser_);
    return true;
  }

  // Takes a chunk-size line from the front of `data` (collecting it across calls when it
  // comes in pieces), checks it, and hands llhttp the size alone. `*used` is what was taken;
  // false on an error.
  bool FeedChunkLine(absl::string_view data, size_t* used) {
    size_t lf = data.find('\n');
    size_t take = lf == absl::string_view::npos ? data.size() : lf + 1;
    *used = take;
    if (chunk_line_.size() + take > kMaxChunkLineBytes) {
      Fail(bad_status_, "chunk line too long");
      return false;
    }
    absl::string_view line = data.substr(0, take);
    if (!chunk_line_.empty() || lf == absl::string_view::npos) {
      chunk_line_.append(line.data(), line.size());
      if (lf == absl::string_view::npos) {
        return true;
      }
      line = chunk_line_;
    }
    absl::string_view digits;
    // A size of more than 20 digits overflows (or is zeros no client sends).
    char size_line[24];
    if (!ParseChunkLine(line, &digits) || digits.size() > sizeof(size_line) - 4) {
      Fail(bad_status_, "malformed chunk line");
      return false;
    }
    std::memcpy(size_line, digits.data(), digits.size());
    std::memcpy(size_line + digits.size(), "\r\n", 2);
    chunk_line_.clear();
    in_chunk_line_ = false;
    llhttp_errno_t rc = ExecuteLlhttp(&parser_, size_line, digits.size() + 2);
    if (has_error_) {
      return false;
    }
    if (rc == HPE_PAUSED && ResumeInsideMessage()) {
      return true;  // the last chunk: its trailer section follows
    }
    if (rc != HPE_OK) {
      SetLlhttpError(rc);
      return false;
    }
    return true;
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
  bool trailers_next_ = false;    // paused at the last chunk; a trailer section follows
  bool in_trailers_ = false;      // headers_ holds trailer fields
  bool chunk_line_next_ = false;  // paused where a chunk-size line starts
  bool in_chunk_line_ = false;    // the next bytes are a chunk-size line (FeedChunkLine)
  bool last_chunk_ = false;       // the last chunk was seen
  std::string chunk_line_;        // a chunk-size line that came in pieces
  // Responses: the first bytes of the status line ("HTTP/1.1 200 "), kept to see that the
  // status has exactly three digits, which llhttp does not check.
  bool capture_status_line_ = false;
  char status_line_[13] = {};
  uint8_t status_line_size_ = 0;
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
    self->last_chunk_ = false;
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
    if (result == 0 && (parser->flags & F_CHUNKED) != 0) {
      self->chunk_line_next_ = true;  // the first chunk-size line is ours to check
      return HPE_PAUSED;
    }
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
  static int OnChunkHeader(llhttp_t* parser) {
    if (parser->content_length != 0) {
      return 0;
    }
    LlhttpDecoder* self = Self(parser);
    self->last_chunk_ = true;
    self->trailers_next_ = true;
    return HPE_PAUSED;
  }
  // A chunk's data and CRLF are done: the next chunk-size line is ours to check (llhttp's is
  // too strict about extensions). Not after the last chunk, whose trailers came before this.
  static int OnChunkComplete(llhttp_t* parser) {
    LlhttpDecoder* self = Self(parser);
    if (self->last_chunk_) {
      return 0;
    }
    self->chunk_line_next_ = true;
    return HPE_PAUSED;
  }
  // Trailer fields are checked as a head's are, then dropped: nothing downstream of the codec
  // uses them, and the forwarded body ends with a last chunk of its own.
  bool CheckTrailers() {
    FinishField();
    for (const HeaderMap::Entry& entry : headers_.entries()) {
      if (entry.id == FieldId::kInvalid) {
        Fail(bad_status_, "invalid trailer field name");
        return false;
      }
      if (!IsValidFieldValue(entry.value)) {
        Fail(bad_status_, "invalid trailer field value");
        return false;
      }
    }
    headers_.Clear();
    return true;
  }
  static int OnMessageComplete(llhttp_t* parser) {
    LlhttpDecoder* self = Self(parser);
    if (self->in_trailers_) {
      self->in_trailers_ = false;
      if (!self->CheckTrailers()) {
        return -1;
      }
    }
    self->in_message_ = false;
    self->head_done_ = false;
    self->status_line_size_ = 0;
    self->scanner_.Reset();
    return self->MessageComplete();
  }
};

}  // namespace confgate::http::internal
