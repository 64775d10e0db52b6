// An ordered list of header fields with case-insensitive lookup.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "confgate/common/recycling.h"

namespace confgate::http {

// RFC 9110 field syntax, for heads confgate writes from anything but a live message (the codec
// checks those): a name is a non-empty token; a value (or a reason phrase) is HTAB, SP, VCHAR
// and obs-text only, so it can never carry CR, LF or NUL into a serialized head.
bool IsValidFieldName(absl::string_view name);
bool IsValidFieldValue(absl::string_view value);

// The field names the proxy acts on, recognized once per field (when the codec has parsed its
// name, or when a field is added) so the hot paths compare one byte instead of a name.
enum class FieldId : uint8_t {
  kOther,    // a valid name the proxy has no rule for
  kInvalid,  // empty, or not an RFC 9110 token
  kHost,
  kContentLength,
  kTransferEncoding,
  kConnection,
  kKeepAlive,
  kProxyConnection,
  kTe,
  kTrailer,
  kUpgrade,
  kProxy,
  kProxyAuthenticate,
  kProxyAuthorization,
  kExpect,
  kVia,
  kXForwardedFor,
  kXForwardedProto,
  kXRealIp,
  kXRequestId,
  kAge,
};

// The name's FieldId; it also tells whether the name is valid (kInvalid when not).
FieldId ClassifyFieldName(absl::string_view name);
// The same for a name known to be a token (never kInvalid).
FieldId ClassifyValidFieldName(absl::string_view name);

// The fields that belong to one hop (RFC 9110 section 7.6.1) and the framing fields each hop
// sets for itself. Proxy-Authorization and Proxy-Authenticate address this proxy, which does
// no proxy authentication (RFC 2616 listed them as hop-by-hop): passing them on would hand a
// client's proxy credentials to the replicas. "Proxy" is no standard field at all; dropping it
// keeps it from becoming HTTP_PROXY in a CGI-style upstream (httpoxy).
inline bool IsHopByHop(FieldId id) {
  static_assert(static_cast<int>(FieldId::kAge) < 32, "the mask below has 32 bits");
  constexpr uint32_t kHopByHop =
      1u << static_cast<int>(FieldId::kContentLength) |
      1u << static_cast<int>(FieldId::kTransferEncoding) |
      1u << static_cast<int>(FieldId::kConnection) | 1u << static_cast<int>(FieldId::kKeepAlive) |
      1u << static_cast<int>(FieldId::kProxyConnection) | 1u << static_cast<int>(FieldId::kTe) |
      1u << static_cast<int>(FieldId::kTrailer) | 1u << static_cast<int>(FieldId::kUpgrade) |
      1u << static_cast<int>(FieldId::kProxy) |
      1u << static_cast<int>(FieldId::kProxyAuthenticate) |
      1u << static_cast<int>(FieldId::kProxyAuthorization);
  return (kHopByHop >> static_cast<int>(id)) & 1u;
}

// Field names compare case-insensitively. Inline, lengths first: most comparisons on the hot
// path are between names of different lengths, and the rest are short.
inline bool FieldNameEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (absl::ascii_tolower(static_cast<unsigned char>(a[i])) !=
        absl::ascii_tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// The fields live in entries_[0, size_). Entries past size_ are spares: fields removed, or
// left by an earlier head that used this list, whose strings keep their buffers, so the next
// fields are copied into memory already there instead of allocated and freed per field. (Not
// in the sanitizer build: there removed fields are freed, so a stale pointer into one is seen.)
// The names and values given to Add() and Set() must not point into this map's own fields:
// those may be reused or moved before they are read.
class HeaderMap {
 public:
  struct Entry {
    std::string name;
    std::string value;
    // ClassifyFieldName(name), kept in step by HeaderMap and the codec: whoever changes a name
    // in place must set it again.
    FieldId id = FieldId::kOther;
  };

  HeaderMap() = default;
  HeaderMap(const HeaderMap& other) { *this = other; }
  HeaderMap& operator=(const HeaderMap& other);
  HeaderMap(HeaderMap&& other) noexcept
      : entries_(std::move(other.entries_)), size_(std::exchange(other.size_, 0)) {}
  HeaderMap& operator=(HeaderMap&& other) noexcept;
  ~HeaderMap() { Recycle(); }

  void Add(absl::string_view name, absl::string_view value) {
    Add(ClassifyFieldName(name), name, value);
  }
  // Add() for a name the caller knows: `id` must be ClassifyFieldName(name). Returns the new
  // field, for a caller that fills its value in place.
  Entry& Add(FieldId id, absl::string_view name, absl::string_view value) {
    Entry& entry = AddEmpty();
    entry.id = id;
    entry.name.assign(name.data(), name.size());
    entry.value.assign(value.data(), value.size());
    return entry;
  }
  // A new empty field at the end (id kOther), for a caller to fill in place.
  Entry& AddEmpty() {
    if (size_ == entries_.size()) {
      entries_.emplace_back();
    } else {
      Entry& spare = entries_[size_];
      spare.name.clear();
      spare.value.clear();
      spare.id = FieldId::kOther;
    }
    return entries_[size_++];
  }
  Entry& last() { return entries_[size_ - 1]; }
  // Room for `fields` fields. Every message's head reserves room, so the lists of heads gone
  // are kept per thread, with their spare entries, and handed to the next ones.
  void Reserve(size_t fields);
  // Replaces every field named `name` with one field (appended at the end when absent).
  void Set(absl::string_view name, absl::string_view value);
  // Replaces every field with the id of `name` by one field, the first of them rewritten where
  // it is (appended at the end when absent); `name` must be the name of a known field.
  void Set(FieldId id, absl::string_view name, absl::string_view value);
  // Removes every field named `name`; returns how many were removed.
  size_t Remove(absl::string_view name);
  // Removes every field for which `remove(Entry&)` is true, in one pass, keeping the order of
  // the others; the predicate may move a value out of a field it removes.
  template <typename Predicate>
  size_t RemoveIf(Predicate remove) {
    size_t kept = 0;
    for (size_t i = 0; i < size_; ++i) {
      if (remove(entries_[i])) {
        continue;
      }
      if (kept != i) {
        std::swap(entries_[kept], entries_[i]);  // the removed one becomes a spare
      }
      ++kept;
    }
    size_t removed = size_ - kept;
    size_ = kept;
    if constexpr (!kRecycleMemory) {
      entries_.resize(kept);  // the sanitizer build frees removed fields (see recycling.h)
    }
    return removed;
  }
  // The first field named `name`, or nullptr.
  const std::string* Get(absl::string_view name) const;
  // The first field with this id (not kOther or kInvalid), or nullptr.
  const std::string* Get(FieldId id) const;
  bool Has(absl::string_view name) const { return Get(name) != nullptr; }
  // True when any comma-separated element of any `name` field equals `token` (case-insensitive).
  bool HasToken(absl::string_view name, absl::string_view token) const;

  absl::Span<const Entry> entries() const { return {entries_.data(), size_}; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  void Recycle();

  std::vector<Entry> entries_;
  size_t size_ = 0;
};

}  // namespace confgate::http
