// The request codec on arbitrary bytes, fed in pieces whose sizes come from the input, resumed
// after every message like the proxy does, and fed whole. Nothing may crash, leak or trip a
// sanitizer, and both ways must reach the same verdict.
#include <cstddef>
#include <cstdint>

#include "confgate/http/codec.h"

namespace {

class Sink : public confgate::http::RequestDecoderCallbacks {
 public:
  void OnRequestHead(confgate::http::RequestHead&& head) override {
    heads += head.target().size() > 0;
  }
  void OnRequestBody(absl::string_view data) override { bytes += data.size(); }
  void OnRequestComplete() override { ++complete; }
  size_t heads = 0;
  size_t bytes = 0;
  size_t complete = 0;
};

struct Outcome {
  size_t heads = 0;
  size_t body_bytes = 0;
  size_t complete = 0;
  bool error = false;
};

// Feeds `input` in pieces of `step` bytes, resuming after every message like the proxy does.
Outcome Decode(absl::string_view input, size_t step) {
  confgate::http::DecoderLimits limits;
  limits.max_header_bytes = 4096;
  limits.max_uri_bytes = 1024;
  limits.max_body_bytes = 65536;
  Sink sink;
  auto decoder = confgate::http::RequestDecoder::Create(sink, limits);
  std::string pending;
  for (size_t offset = 0; offset < input.size() && !decoder->has_error(); offset += step) {
    absl::string_view piece = input.substr(offset, step);
    pending.append(piece.data(), piece.size());
    for (int guard = 0; guard < 1000 && !pending.empty() && !decoder->has_error(); ++guard) {
      if (decoder->paused()) {
        decoder->Resume();
      }
      size_t consumed = decoder->Feed(pending);
      if (consumed > pending.size()) {
        __builtin_trap();  // the codec may never claim more than it was given
      }
      pending.erase(0, consumed);
      if (consumed == 0 && !decoder->paused()) {
        break;
      }
    }
  }
  if (sink.complete > sink.heads) {
    __builtin_trap();  // every completed request had a head
  }
  return Outcome{sink.heads, sink.bytes, sink.complete, decoder->has_error()};
}

}  // namespace

// Also differential: the same bytes fed whole must get the same verdict as in pieces (the
// codec takes a faster path for a head that arrives whole).
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) {
    return 0;
  }
  size_t step = 1 + data[0] % 64;  // the piece size
  absl::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  Outcome pieces = Decode(input, step);
  Outcome whole = Decode(input, input.size() + 1);
  // Only whether: with two faults in one head, which is reported (say 400 for a bad byte or
  // 414 for the length) may depend on where the pieces end.
  if (pieces.error != whole.error || pieces.heads != whole.heads ||
      pieces.complete != whole.complete ||
      (!pieces.error && pieces.body_bytes != whole.body_bytes)) {
    __builtin_trap();
  }
  return 0;
}
