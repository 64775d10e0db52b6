// The cache snapshot decoder on arbitrary bytes: rejected whole or decoded; what decodes must
// encode back to the same bytes.
#include <cstddef>
#include <cstdint>

#include "confgate/cache/snapshot.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::vector<confgate::cache::CacheItem>> items =
      confgate::cache::DecodeSnapshot(input);
  if (items.ok() && confgate::cache::EncodeSnapshot(*items) != input) {
    __builtin_trap();
  }
  return 0;
}
