// Runs one build of llhttp's parser over bytes and writes down everything it reports: each
// span (start line parts, field names, values, body) with its bytes, each event, and the error
// it stops at. Spans reported in pieces are joined, so two builds that split a span at
// different places still write the same trace. Used to hold the SSE4.2 build of the parser to
// the portable one (llhttp_sse42.c).
#pragma once

#include <llhttp.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "http/llhttp_sse42.h"

namespace confgate::testing {

using LlhttpExecute = int (*)(llhttp_t* parser, const char* data, const char* end);

inline int PortableLlhttpExecute(llhttp_t* parser, const char* data, const char* end) {
  return llhttp__internal_execute(parser, data, end);
}

class LlhttpTrace {
 public:
  // Feeds `input` in pieces of `step` bytes (all of it at once when step is 0) until the
  // parser stops with an error; returns the trace.
  static std::string Run(LlhttpExecute execute, llhttp_type_t type, absl::string_view input,
                         size_t step) {
    LlhttpTrace trace;
    llhttp_settings_t settings;
    llhttp_settings_init(&settings);
    settings.on_message_begin = [](llhttp_t* p) { return Self(p)->Event("begin"); };
    settings.on_url = [](llhttp_t* p, const char* at, size_t n) {
      return Self(p)->Span('U', at, n);
    };
    settings.on_status = [](llhttp_t* p, const char* at, size_t n) {
      return Self(p)->Span('S', at, n);
    };
    settings.on_header_field = [](llhttp_t* p, const char* at, size_t n) {
      return Self(p)->Span('F', at, n);
    };
    settings.on_header_value = [](llhttp_t* p, const char* at, size_t n) {
      return Self(p)->Span('V', at, n);
    };
    settings.on_headers_complete = [](llhttp_t* p) {
      return Self(p)->Event(absl::StrCat("head ", p->method, " ", p->status_code, " ",
                                         p->http_major, ".", p->http_minor, " ", p->flags));
    };
    settings.on_body = [](llhttp_t* p, const char* at, size_t n) {
      return Self(p)->Span('B', at, n);
    };
    settings.on_message_complete = [](llhttp_t* p) { return Self(p)->Event("complete"); };
    llhttp_t parser;
    llhttp_init(&parser, type, &settings);
    parser.data = &trace;
    size_t piece = step == 0 ? input.size() : step;
    for (size_t offset = 0; offset < input.size(); offset += piece) {
      absl::string_view bytes = input.substr(offset, piece);
      int rc = execute(&parser, bytes.data(), bytes.data() + bytes.size());
      if (rc != HPE_OK) {
        const char* stop = llhttp_get_error_pos(&parser);
        absl::StrAppend(&trace.text_, "|error ", rc, " at ",
                        offset + static_cast<size_t>(stop - bytes.data()), " ",
                        llhttp_get_error_reason(&parser));
        break;
      }
    }
    return trace.text_;
  }

 private:
  static LlhttpTrace* Self(llhttp_t* parser) { return static_cast<LlhttpTrace*>(parser->data); }

  int Event(absl::string_view what) {
    absl::StrAppend(&text_, "|", what);
    open_span_ = 0;
    return 0;
  }
  int Span(char kind, const char* at, size_t length) {
    if (open_span_ != kind) {
      absl::StrAppend(&text_, "|", std::string(1, kind), ":");
      open_span_ = kind;
    }
    text_.append(at, length);
    return 0;
  }

  std::string text_;
  char open_span_ = 0;
};

}  // namespace confgate::testing
