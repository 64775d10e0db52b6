// A stable 64-bit FNV-1a hash: the same value in every process and on every run, for keys
// that are persisted or shared (cache keys, snapshot checksums, consistent hashing).
#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"

namespace confgate {

inline uint64_t Fnv1a64(absl::string_view data) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : data) {
    hash = (hash ^ c) * 0x100000001b3ULL;
  }
  return hash;
}

}  // namespace confgate
