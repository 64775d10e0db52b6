#include "http/llhttp_decoder.h"

namespace confgate::http::internal {

#if defined(CONFGATE_LLHTTP_SSE42)
const bool kCpuHasSse42 = CpuHasSse42();
#endif

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

}  // namespace confgate::http::internal
