// The HTTP/1.1 decoders on a typical proxied exchange: a GET for a config key with eight
// headers, and its 200 answer with a ~600-byte JSON body. Each decoder is reused, as on a
// keep-alive connection: one iteration is one whole message fed in a single piece.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "confgate/http/codec.h"

namespace confgate::http {
namespace {

std::string MakeRequest() {
  return "GET /v1/kv/app/config?index=5 HTTP/1.1\r\n"
         "Host: config.internal.example.com\r\n"
         "User-Agent: confgate-client/1.4.2 (linux; x86_64)\r\n"
         "Accept: application/json\r\n"
         "Accept-Encoding: gzip, deflate\r\n"
         "Connection: keep-alive\r\n"
         "X-Request-Id: 6f1c2a9e-3b7d-4e1a-9c2f-8a4b5d6e7f80\r\n"
         "X-Forwarded-For: 203.0.113.7\r\n"
         "Traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
         "\r\n";
}

// A JSON object of about `size` bytes.
std::string MakeJsonBody(size_t size) {
  std::string body = R"({"key":"app/config","index":5,"settings":{)";
  for (int i = 0; body.size() + 40 < size; ++i) {
    absl::StrAppend(&body, i == 0 ? "" : ",", "\"setting_", i, "\":\"value-", i * 7919, "\"");
  }
  return body + "}}";
}

std::string MakeResponse() {
  std::string body = MakeJsonBody(600);
  return absl::StrCat(
      "HTTP/1.1 200 OK\r\n"
      "Date: Tue, 04 Jun 2024 10:15:30 GMT\r\n"
      "Content-Type: application/json\r\n"
      "Content-Length: ",
      body.size(),
      "\r\n"
      "ETag: \"5-a3f9c2d1\"\r\n"
      "Cache-Control: max-age=5\r\n"
      "\r\n",
      body);
}

class RequestSink : public RequestDecoderCallbacks {
 public:
  void OnRequestHead(RequestHead&& head) override { benchmark::DoNotOptimize(head); }
  void OnRequestBody(absl::string_view data) override { benchmark::DoNotOptimize(data); }
  void OnRequestComplete() override { ++complete; }
  int64_t complete = 0;
};

class ResponseSink : public ResponseDecoderCallbacks {
 public:
  void OnResponseHead(ResponseHead&& head) override { benchmark::DoNotOptimize(head); }
  void OnResponseBody(absl::string_view data) override { body_bytes += data.size(); }
  void OnResponseComplete() override { ++complete; }
  int64_t body_bytes = 0;
  int64_t complete = 0;
};

void BM_DecodeRequest(benchmark::State& state) {
  const std::string request = MakeRequest();
  RequestSink sink;
  auto decoder = RequestDecoder::Create(sink, DecoderLimits{});
  for (auto _ : state) {
    benchmark::DoNotOptimize(decoder->Feed(request));
    decoder->Resume();
  }
  if (sink.complete != static_cast<int64_t>(state.iterations()) || decoder->has_error()) {
    state.SkipWithError("a request was not decoded completely");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * request.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["message_bytes"] = static_cast<double>(request.size());
}

void BM_DecodeResponse(benchmark::State& state) {
  const std::string response = MakeResponse();
  ResponseSink sink;
  auto decoder = ResponseDecoder::Create(sink, DecoderLimits{});
  for (auto _ : state) {
    decoder->ExpectResponse("GET");  // also resumes after the previous response
    benchmark::DoNotOptimize(decoder->Feed(response));
  }
  if (sink.complete != static_cast<int64_t>(state.iterations()) || decoder->has_error()) {
    state.SkipWithError("a response was not decoded completely");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * response.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["message_bytes"] = static_cast<double>(response.size());
  state.counters["body_bytes"] = static_cast<double>(sink.body_bytes) /
                                 static_cast<double>(std::max<int64_t>(sink.complete, 1));
}

BENCHMARK(BM_DecodeRequest);
BENCHMARK(BM_DecodeResponse);

}  // namespace
}  // namespace confgate::http

BENCHMARK_MAIN();
