// The second build of llhttp's parser, with SSE4.2 (llhttp_sse42.c): for the codec, which runs
// it where the CPU can, and for the tests that hold it to the portable build.
#pragma once

#include <llhttp.h>

#if defined(CONFGATE_LLHTTP_SSE42)
extern "C" int confgate_sse42_llhttp__internal_execute(llhttp_t* parser, const char* data,
                                                       const char* end);
#endif

namespace confgate::http {

// Whether this CPU runs the SSE4.2 build (false where it is not built).
inline bool CpuHasSse42() {
#if defined(CONFGATE_LLHTTP_SSE42)
  __builtin_cpu_init();  // needed when this runs before main()
  return __builtin_cpu_supports("sse4.2") != 0;
#else
  return false;
#endif
}

}  // namespace confgate::http
