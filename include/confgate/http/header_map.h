// An ordered list of header fields with case-insensitive lookup.
#pragma once

#include <cstdint>
#include <cstring>
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
// The same for a name known to be a token (never kInvalid). Tokens and SP are compared
// exactly: a name with SP in it comes out kOther.
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

// A field name known when the program is built (a string literal, which the constructor
// insists on): fields added with one refer to it rather than copy it.
class LiteralName {
 public:
  template <size_t N>
  consteval LiteralName(const char (&name)[N]) : name_(name, N - 1) {}  // NOLINT: implicit
  absl::string_view view() const { return name_; }

 private:
  absl::string_view name_;
};

// The fields' names and values are views into the map's own text (or, for a LiteralName, into
// the program): blocks of bytes that never move, so a view stays valid as long as the map (or
// the map it is moved into) lives, and removing or replacing a field leaves its bytes where
// they are until the map goes. Bytes are copied in once (a head that arrived whole is copied
// as one piece and its fields are views of the copy) and never again by moves. The text blocks
// and field lists of heads that are gone are kept per thread for the next heads (not in the
// sanitizer build: there they are freed, so a stale view is seen). The names and values given
// to Add(), AddCopy() and Set() may be views into this map.
class HeaderMap {
 public:
  struct Entry {
    absl::string_view name;
    absl::string_view value;
    // ClassifyFieldName(name), kept in step by HeaderMap and the codec.
    FieldId id = FieldId::kOther;
  };

  HeaderMap() = default;
  HeaderMap(const HeaderMap& other) { *this = other; }
  HeaderMap& operator=(const HeaderMap& other);
  HeaderMap(HeaderMap&& other) noexcept
      : entries_(std::move(other.entries_)), text_(std::exchange(other.text_, nullptr)) {
    other.entries_.clear();
  }
  HeaderMap& operator=(HeaderMap&& other) noexcept;
  ~HeaderMap() { Clear(); }
  // Removes every field and gives the map's memory back (to this thread's spares).
  void Clear() {
    if (text_ != nullptr || entries_.capacity() != 0) {  // not for the many moved-from maps
      Release();
    }
  }

  void Add(absl::string_view name, absl::string_view value) {
    AddCopy(Entry{name, value, ClassifyFieldName(name)});
  }
  // `bytes` in the map's text: a copy, or the bytes themselves when they are in its newest
  // block already. While that text is the newest, a field's first piece given to the Append
  // functions as a view into it is used where it is: the codec copies a whole head once.
  absl::string_view AddText(absl::string_view bytes) {
    return InNewestBlock(bytes) ? bytes : CopyText(bytes);
  }
  // Add() for a name the caller knows: `id` must be ClassifyFieldName(name).
  void Add(FieldId id, LiteralName name, absl::string_view value) {
    absl::string_view value_copy = CopyText(value);  // before the entry: it may be a view here
    entries_.push_back(Entry{name.view(), value_copy, id});
  }
  // A copy of a field (of this map or another).
  void AddCopy(const Entry& field) {
    absl::string_view name_copy = CopyText(field.name);
    absl::string_view value_copy = CopyText(field.value);
    entries_.push_back(Entry{name_copy, value_copy, field.id});
  }
  // For the codec, which gets a field's bytes in pieces: a new empty field at the end (id
  // kOther), then pieces appended to its name or value.
  void AddEmpty() { entries_.push_back(Entry{absl::string_view("", 0), absl::string_view("", 0)}); }
  void AppendToLastName(absl::string_view bytes) {
    Entry& entry = entries_.back();
    entry.name = entry.name.empty() && InNewestBlock(bytes) ? bytes : ExtendText(entry.name, bytes);
  }
  void AppendToLastValue(absl::string_view bytes) {
    Entry& entry = entries_.back();
    entry.value =
        entry.value.empty() && InNewestBlock(bytes) ? bytes : ExtendText(entry.value, bytes);
  }
  // Bytes of text blocks the map holds (used or not).
  size_t TextCapacityForTest() const;
  // The last field, for the codec to name it and trim its value (views may only narrow).
  Entry& last() { return entries_.back(); }
  // Room for `fields` fields. Every message's head reserves room, so the lists of heads gone
  // are kept per thread and handed to the next ones.
  void Reserve(size_t fields);
  // Replaces every field named `name` with one field (appended at the end when absent).
  void Set(absl::string_view name, absl::string_view value);
  // Replaces every field with the id of `name` by one field, the first of them rewritten where
  // it is (appended at the end when absent); `name` must be the name of a known field.
  void Set(FieldId id, LiteralName name, absl::string_view value);
  // Removes every field named `name`; returns how many were removed.
  size_t Remove(absl::string_view name);
  // Removes every field for which `remove(const Entry&)` is true, in one pass, keeping the
  // order of the others.
  template <typename Predicate>
  size_t RemoveIf(Predicate remove) {
    size_t kept = 0;
    for (size_t i = 0; i < entries_.size(); ++i) {
      if (remove(static_cast<const Entry&>(entries_[i]))) {
        continue;
      }
      entries_[kept++] = entries_[i];
    }
    size_t removed = entries_.size() - kept;
    entries_.resize(kept);
    return removed;
  }
  // The value of the first field named `name`, or nullptr.
  const absl::string_view* Get(absl::string_view name) const;
  // The value of the first field with this id (not kOther or kInvalid), or nullptr.
  const absl::string_view* Get(FieldId id) const;
  bool Has(absl::string_view name) const { return Get(name) != nullptr; }
  // True when any comma-separated element of any `name` field equals `token` (case-insensitive).
  bool HasToken(absl::string_view name, absl::string_view token) const;

  absl::Span<const Entry> entries() const { return entries_; }
  // The memory the map holds, for the cache's accounting.
  size_t MemoryBytes() const;
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

 private:
  // A block of text: this header, then `capacity` bytes.
  struct TextBlock {
    TextBlock* previous;  // the block filled before this one
    size_t capacity;
    size_t used;
    char* bytes() { return reinterpret_cast<char*>(this + 1); }
  };

  // A copy of `bytes` in this map's text (a non-null view even when empty).
  absl::string_view CopyText(absl::string_view bytes) {
    if (bytes.empty()) {
      return absl::string_view("", 0);
    }
    char* to = AllocateText(bytes.size());
    std::memcpy(to, bytes.data(), bytes.size());
    return absl::string_view(to, bytes.size());
  }
  // `last` (a view into this map's text, or empty) followed by `more`, in one piece: grown in
  // place when it ends the newest text and there is room, else copied anew.
  absl::string_view ExtendText(absl::string_view last, absl::string_view more) {
    if (last.empty()) {
      return CopyText(more);
    }
    if (text_ != nullptr && last.data() + last.size() == text_->bytes() + text_->used &&
        text_->capacity - text_->used >= more.size()) {
      std::memcpy(text_->bytes() + text_->used, more.data(), more.size());
      text_->used += more.size();
      return absl::string_view(last.data(), last.size() + more.size());
    }
    return Concatenate(last, more);
  }
  // True when `bytes` are in the newest text block: blocks never move, so a view of them is as
  // good as a copy.
  bool InNewestBlock(absl::string_view bytes) const {
    if (text_ == nullptr) {
      return false;
    }
    // Compared as integers: the bytes may be anywhere, not only in this block.
    auto begin = reinterpret_cast<uintptr_t>(text_->bytes());
    auto data = reinterpret_cast<uintptr_t>(bytes.data());
    return data >= begin && data + bytes.size() <= begin + text_->used;
  }
  char* AllocateText(size_t size) {
    if (text_ != nullptr && text_->capacity - text_->used >= size) {
      char* to = text_->bytes() + text_->used;
      text_->used += size;
      return to;
    }
    return AllocateBlock(size);
  }
  // A new newest block of `capacity` bytes, none used.
  TextBlock* NewBlock(size_t capacity);
  // `size` bytes in a new block (of the usual size, or larger for a large field).
  char* AllocateBlock(size_t size);
  absl::string_view Concatenate(absl::string_view first, absl::string_view second);
  // Clear() for a map that holds memory.
  void Release();

  std::vector<Entry> entries_;
  TextBlock* text_ = nullptr;  // the newest block, or none yet
};

}  // namespace confgate::http
