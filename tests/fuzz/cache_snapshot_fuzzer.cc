// The cache snapshot decoder on arbitrary bytes: rejected whole or decoded; what decodes keeps
// only entries that pass validation, and encodes back to the same bytes when nothing was
// dropped. The input is decoded as it is (the envelope checks) and once more with its length
// and checksum fixed up, so that mutations inside a seed's payload reach the entry parser and
// the per-entry validation instead of stopping at the checksum.
#include <cstddef>
#include <cstdint>
#include <string>

#include "confgate/cache/snapshot.h"
#include "confgate/common/hash.h"
#include "confgate/http/header_map.h"

namespace {

constexpr absl::string_view kMagic = "CONFGATE-CACHE\n";

void PutU64(std::string& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) {
    out.push_back(static_cast<char>(value >> (8 * i)));
  }
}

void Check(absl::string_view input) {
  absl::StatusOr<confgate::cache::DecodedSnapshot> decoded = confgate::cache::DecodeSnapshot(input);
  if (!decoded.ok()) {
    return;
  }
  for (const confgate::cache::CacheItem& item : decoded->items) {
    // Whatever the file said, what loads is never fresh and carries no framing of its own.
    if (!item.response->from_snapshot || item.response->Fresh(item.response->stored_at) ||
        confgate::cache::WhySnapshotEntryInvalid(item).has_value()) {
      __builtin_trap();
    }
    for (const confgate::http::HeaderMap::Entry& entry : item.response->headers.entries()) {
      if (confgate::http::IsHopByHop(entry.id) || !confgate::http::IsValidFieldValue(entry.value)) {
        __builtin_trap();
      }
    }
  }
  std::string encoded = confgate::cache::EncodeSnapshot(decoded->items);
  if (decoded->dropped.empty()) {
    if (encoded != input) {
      __builtin_trap();
    }
    return;
  }
  // With entries dropped, the rest must be a snapshot of its own that loses nothing more.
  absl::StatusOr<confgate::cache::DecodedSnapshot> again = confgate::cache::DecodeSnapshot(encoded);
  if (!again.ok() || !again->dropped.empty() || again->items.size() != decoded->items.size()) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  Check(input);
  // magic, payload size, payload, checksum: rebuild the envelope around the payload.
  if (input.size() >= kMagic.size() + 16 && input.substr(0, kMagic.size()) == kMagic) {
    absl::string_view payload = input.substr(kMagic.size() + 8);
    payload.remove_suffix(8);
    std::string fixed(kMagic);
    PutU64(fixed, payload.size());
    fixed.append(payload.data(), payload.size());
    PutU64(fixed, confgate::Fnv1a64(payload));
    if (fixed != input) {
      Check(fixed);
    }
  }
  return 0;
}
