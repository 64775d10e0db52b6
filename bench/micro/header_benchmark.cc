// What the proxy does to a request head before forwarding it (proxy_stream.cc): rewrite the
// headers (hop-by-hop out; X-Forwarded-For, X-Forwarded-Proto, X-Real-IP, X-Request-Id, Via in),
// set the framing header, and serialise the head into a new string. The rewrite works in place, so
// each iteration first copies the decoded head; BM_CopyHead measures that copy alone, to be
// subtracted from the figures that include it.
#include <benchmark/benchmark.h>

#include <string>

#include "absl/random/random.h"
#include "confgate/http/codec.h"
#include "confgate/http/forwarding.h"

namespace confgate::http {
namespace {

constexpr ForwardingContext kContext{"198.51.100.23", "http", "1.1 confgate", ""};

// The head the decoder produces for codec_benchmark's request; with or without a usable
// X-Request-Id (without one, the proxy generates a UUID).
RequestHead MakeHead(bool with_request_id) {
  RequestHead head;
  head.method = "GET";
  head.SetTarget("/v1/kv/app/config?index=5");
  head.headers.Add("Host", "config.internal.example.com");
  head.headers.Add("User-Agent", "confgate-client/1.4.2 (linux; x86_64)");
  head.headers.Add("Accept", "application/json");
  head.headers.Add("Accept-Encoding", "gzip, deflate");
  head.headers.Add("Connection", "keep-alive");
  if (with_request_id) {
    head.headers.Add("X-Request-Id", "6f1c2a9e-3b7d-4e1a-9c2f-8a4b5d6e7f80");
  }
  head.headers.Add("X-Forwarded-For", "203.0.113.7");
  head.headers.Add("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  return head;
}

void BM_CopyHead(benchmark::State& state) {
  const RequestHead original = MakeHead(true);
  for (auto _ : state) {
    RequestHead head = original;
    benchmark::DoNotOptimize(head);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

void BM_PrepareUpstreamRequest(benchmark::State& state, bool with_request_id) {
  const RequestHead original = MakeHead(with_request_id);
  RequestIdRandom random;
  for (auto _ : state) {
    RequestHead head = original;
    absl::string_view request_id = PrepareUpstreamRequest(head, kContext, random);
    benchmark::DoNotOptimize(request_id);
    benchmark::DoNotOptimize(head);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

void BM_SerializeRequestHead(benchmark::State& state) {
  RequestHead head = MakeHead(true);
  RequestIdRandom random;
  PrepareUpstreamRequest(head, kContext, random);
  SetFramingHeader(head.headers, head.framing, head.content_length);
  size_t bytes = 0;
  for (auto _ : state) {
    std::string out;
    SerializeRequestHead(head, out);
    bytes = out.size();
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["head_bytes"] = static_cast<double>(bytes);
}

// The whole step, as ProxyStream does it: copy (see above), rewrite, framing, serialise.
void BM_ForwardRequestHead(benchmark::State& state, bool with_request_id) {
  const RequestHead original = MakeHead(with_request_id);
  RequestIdRandom random;
  size_t bytes = 0;
  for (auto _ : state) {
    RequestHead head = original;
    absl::string_view request_id = PrepareUpstreamRequest(head, kContext, random);
    benchmark::DoNotOptimize(request_id);
    SetFramingHeader(head.headers, head.framing, head.content_length);
    std::string out;
    SerializeRequestHead(head, out);
    bytes = out.size();
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["head_bytes"] = static_cast<double>(bytes);
}

BENCHMARK(BM_CopyHead);
BENCHMARK_CAPTURE(BM_PrepareUpstreamRequest, incoming_id, true);
BENCHMARK_CAPTURE(BM_PrepareUpstreamRequest, generated_id, false);
BENCHMARK(BM_SerializeRequestHead);
BENCHMARK_CAPTURE(BM_ForwardRequestHead, incoming_id, true);
BENCHMARK_CAPTURE(BM_ForwardRequestHead, generated_id, false);

}  // namespace
}  // namespace confgate::http

BENCHMARK_MAIN();
