// The response codec on arbitrary bytes: a request method per response (HEAD from the input),
// pieces of input-chosen size, and an EOF at the end; then the same bytes fed whole.
#include <cstddef>
#include <cstdint>

#include "confgate/http/codec.h"

namespace {

class Sink : public confgate::http::ResponseDecoderCallbacks {
 public:
  void OnResponseHead(confgate::http::ResponseHead&& head) override { statuses += head.status; }
  void OnResponseBody(absl::string_view data) override { bytes += data.size(); }
  void OnResponseComplete() override { ++complete; }
  long statuses = 0;
  size_t bytes = 0;
  size_t complete = 0;
};

struct Outcome {
  long statuses = 0;
  size_t body_bytes = 0;
  size_t complete = 0;
  bool error = false;
};

Outcome Decode(absl::string_view input, size_t step, bool head) {
  Sink sink;
  auto decoder = confgate::http::ResponseDecoder::Create(sink, confgate::http::DecoderLimits{});
  decoder->ExpectResponse(head ? "HEAD" : "GET");
  std::string pending;
  for (size_t offset = 0; offset < input.size() && !decoder->has_error(); offset += step) {
    absl::string_view piece = input.substr(offset, step);
    pending.append(piece.data(), piece.size());
    for (int guard = 0; guard < 1000 && !pending.empty() && !decoder->has_error(); ++guard) {
      if (decoder->paused()) {
        decoder->ExpectResponse(head ? "HEAD" : "GET");
      }
      size_t consumed = decoder->Feed(pending);
      if (consumed > pending.size()) {
        __builtin_trap();
      }
      pending.erase(0, consumed);
      if (consumed == 0 && !decoder->paused()) {
        break;
      }
    }
  }
  decoder->FeedEof();
  return Outcome{sink.statuses, sink.bytes, sink.complete, decoder->has_error()};
}

}  // namespace

// Also differential, as the request fuzzer: fed whole, the same verdict as in pieces.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) {
    return 0;
  }
  size_t step = 1 + data[0] % 64;
  bool head = data[1] & 1;
  absl::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);
  Outcome pieces = Decode(input, step, head);
  Outcome whole = Decode(input, input.size() + 1, head);
  if (pieces.error != whole.error || pieces.statuses != whole.statuses ||
      pieces.complete != whole.complete ||
      (!pieces.error && pieces.body_bytes != whole.body_bytes)) {
    __builtin_trap();
  }
  return 0;
}
