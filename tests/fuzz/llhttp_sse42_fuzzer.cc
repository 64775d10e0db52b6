// The SSE4.2 build of llhttp's parser against the portable build on arbitrary bytes: the first
// byte picks requests or responses and the size of the pieces; both builds must write the same
// trace (support/llhttp_trace.h).
#include <cstddef>
#include <cstdint>
#include <cstdio>

#include "support/llhttp_trace.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
#if defined(CONFGATE_LLHTTP_SSE42)
  static const bool kCpuHasSse42 = confgate::http::CpuHasSse42();
  if (size == 0 || !kCpuHasSse42) {
    return 0;
  }
  llhttp_type_t type = (data[0] & 1) != 0 ? HTTP_RESPONSE : HTTP_REQUEST;
  size_t step = data[0] >> 1;  // 0: all at once
  absl::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string portable = confgate::testing::LlhttpTrace::Run(
      &confgate::testing::PortableLlhttpExecute, type, input, step);
  std::string sse42 = confgate::testing::LlhttpTrace::Run(&confgate_sse42_llhttp__internal_execute,
                                                          type, input, step);
  if (portable != sse42) {
    std::fprintf(stderr, "portable: %s\nsse4.2:   %s\n", portable.c_str(), sse42.c_str());
    __builtin_trap();
  }
#else
  (void)data;
  (void)size;
#endif
  return 0;
}
