#include "confgate/http/header_map.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "confgate/common/recycling.h"

namespace confgate::http {
namespace {

// RFC 9110 tchar, as a table: for names from anywhere but a parsed message (which llhttp has
// checked; see LlhttpDecoder::FinishField).
constexpr std::array<bool, 256> kTokenChars = [] {
  std::array<bool, 256> table{};
  for (int c = '0'; c <= '9'; ++c) table[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) table[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) table[c] = true;
  for (char c : absl::string_view("!#$%&'*+-.^_`|~")) table[static_cast<unsigned char>(c)] = true;
  return table;
}();

// Field lists of heads that are gone, for the next heads made on this thread. Enough for the
// heads alive at one moment; beyond that, idle memory wins. Lists over 64 fields are freed.
struct SpareFieldLists : SpareStack<std::vector<HeaderMap::Entry>> {
  SpareFieldLists() : SpareStack(128) {}
};
constexpr size_t kMaxRecycledFields = 64;

// Text blocks: a usual head's fields fit in one block of this size; larger ones take blocks
// of their own size, which are freed rather than kept. At most 256 KiB kept a thread.
constexpr size_t kTextBlockBytes = 1024;
struct FreeBlock {
  void operator()(void* block) const { ::operator delete(block); }
};
struct SpareTextBlocks : SpareStack<void*, FreeBlock> {
  SpareTextBlocks() : SpareStack(256) {}
};

}  // namespace

void HeaderMap::Reserve(size_t fields) {
  if (kRecycleMemory && entries_.capacity() == 0) {
    if (SpareFieldLists* spares = PerThread<SpareFieldLists>::Get()) {
      entries_ = spares->Take();
    }
  }
  entries_.reserve(fields);
}

HeaderMap::TextBlock* HeaderMap::NewBlock(size_t capacity) {
  void* memory = nullptr;
  if (kRecycleMemory && sizeof(TextBlock) + capacity == kTextBlockBytes) {
    if (SpareTextBlocks* spares = PerThread<SpareTextBlocks>::Get()) {
      memory = spares->Take();
    }
  }
  if (memory == nullptr) {
    memory = ::operator new(sizeof(TextBlock) + capacity);
  }
  TextBlock* block = static_cast<TextBlock*>(memory);
  block->previous = text_;
  block->capacity = capacity;
  block->used = 0;
  text_ = block;
  return block;
}

char* HeaderMap::AllocateBlock(size_t size) {
  TextBlock* block = NewBlock(std::max(size, kTextBlockBytes - sizeof(TextBlock)));
  block->used = size;
  return block->bytes();
}

absl::string_view HeaderMap::Concatenate(absl::string_view first, absl::string_view second) {
  size_t size = first.size() + second.size();
  char* to;
  if (text_ != nullptr && text_->capacity - text_->used >= size) {
    to = AllocateText(size);
  } else {
    // A field that keeps growing (a long value arriving a few bytes at a time) gets room to
    // grow into, twice its size: with blocks of just its size, every piece would copy the
    // whole field into a new block and keep the old one, quadratic in time and memory.
    TextBlock* block = NewBlock(std::max(2 * size, kTextBlockBytes - sizeof(TextBlock)));
    block->used = size;
    to = block->bytes();
  }
  std::memcpy(to, first.data(), first.size());  // `first` stays where it was: blocks never move
  std::memcpy(to + first.size(), second.data(), second.size());
  return absl::string_view(to, first.size() + second.size());
}

size_t HeaderMap::TextCapacityForTest() const {
  size_t total = 0;
  for (const TextBlock* block = text_; block != nullptr; block = block->previous) {
    total += block->capacity;
  }
  return total;
}

void HeaderMap::Release() {
  SpareTextBlocks* block_spares = nullptr;
  if (kRecycleMemory && text_ != nullptr) {
    block_spares = PerThread<SpareTextBlocks>::Get();
  }
  while (text_ != nullptr) {
    TextBlock* previous = text_->previous;
    void* memory = text_;
    bool standard = sizeof(TextBlock) + text_->capacity == kTextBlockBytes;
    if (!(standard && block_spares != nullptr && block_spares->Keep(memory))) {
      ::operator delete(memory);
    }
    text_ = previous;
  }
  entries_.clear();
  if (kRecycleMemory && entries_.capacity() != 0 && entries_.capacity() <= kMaxRecycledFields) {
    if (SpareFieldLists* spares = PerThread<SpareFieldLists>::Get()) {
      spares->Keep(entries_);
    }
  }
}

HeaderMap& HeaderMap::operator=(const HeaderMap& other) {
  if (this != &other) {
    Clear();
    entries_.reserve(other.size());
    // Copies are what the cache keeps: one block of just the text's size, no room to spare.
    size_t text = 0;
    for (const Entry& entry : other.entries()) {
      text += entry.name.size() + entry.value.size();
    }
    if (text > 0) {
      NewBlock(text);
    }
    for (const Entry& entry : other.entries()) {
      AddCopy(entry);
    }
  }
  return *this;
}

size_t HeaderMap::MemoryBytes() const {
  size_t bytes = entries_.capacity() * sizeof(Entry);
  for (const TextBlock* block = text_; block != nullptr; block = block->previous) {
    bytes += sizeof(TextBlock) + block->capacity;
  }
  return bytes;
}

HeaderMap& HeaderMap::operator=(HeaderMap&& other) noexcept {
  if (this != &other) {
    Clear();
    entries_ = std::move(other.entries_);
    other.entries_.clear();
    text_ = std::exchange(other.text_, nullptr);
  }
  return *this;
}

FieldId ClassifyFieldName(absl::string_view name) {
  return IsValidFieldName(name) ? ClassifyValidFieldName(name) : FieldId::kInvalid;
}

FieldId ClassifyValidFieldName(absl::string_view name) {
  // A valid name compared with a known one (lowercase letters and '-'): setting bit 0x20 of
  // each byte lowercases a letter, leaves '-' as it is and turns no other token byte into a
  // letter or '-', so it is a case-insensitive compare, 8 bytes at a time. The known names'
  // sizes are constants: the compiler unrolls each compare into a few loads.
  const char* bytes = name.data();
  size_t size = name.size();
  auto is = [bytes]<size_t N>(const char(&known)[N]) {
    constexpr size_t kSize = N - 1;
    auto load = [](const char* from) {
      uint64_t word;
      std::memcpy(&word, from, sizeof(word));
      return word;
    };
    constexpr uint64_t kLower = 0x2020202020202020ULL;
    if constexpr (kSize >= 8) {
      for (size_t i = 0; i + 8 <= kSize; i += 8) {
        if ((load(bytes + i) | kLower) != load(known + i)) {
          return false;
        }
      }
      // The last 8 bytes, overlapping those compared already.
      return kSize % 8 == 0 || (load(bytes + kSize - 8) | kLower) == load(known + kSize - 8);
    } else {
      for (size_t i = 0; i < kSize; ++i) {
        if ((bytes[i] | 0x20) != known[i]) {
          return false;
        }
      }
      return true;
    }
  };
  switch (size) {
    case 2:
      return is("te") ? FieldId::kTe : FieldId::kOther;
    case 3:
      return is("via") ? FieldId::kVia : is("age") ? FieldId::kAge : FieldId::kOther;
    case 4:
      return is("host") ? FieldId::kHost : FieldId::kOther;
    case 5:
      return is("proxy") ? FieldId::kProxy : FieldId::kOther;
    case 6:
      return is("expect") ? FieldId::kExpect : FieldId::kOther;
    case 7:
      return is("trailer")   ? FieldId::kTrailer
             : is("upgrade") ? FieldId::kUpgrade
                             : FieldId::kOther;
    case 9:
      return is("x-real-ip") ? FieldId::kXRealIp : FieldId::kOther;
    case 10:
      return is("connection")   ? FieldId::kConnection
             : is("keep-alive") ? FieldId::kKeepAlive
                                : FieldId::kOther;
    case 12:
      return is("x-request-id") ? FieldId::kXRequestId : FieldId::kOther;
    case 14:
      return is("content-length") ? FieldId::kContentLength : FieldId::kOther;
    case 15:
      return is("x-forwarded-for") ? FieldId::kXForwardedFor : FieldId::kOther;
    case 16:
      return is("proxy-connection") ? FieldId::kProxyConnection : FieldId::kOther;
    case 17:
      return is("transfer-encoding")   ? FieldId::kTransferEncoding
             : is("x-forwarded-proto") ? FieldId::kXForwardedProto
                                       : FieldId::kOther;
    case 18:
      return is("proxy-authenticate") ? FieldId::kProxyAuthenticate : FieldId::kOther;
    case 19:
      return is("proxy-authorization") ? FieldId::kProxyAuthorization : FieldId::kOther;
    default:
      return FieldId::kOther;
  }
}

bool IsValidFieldName(absl::string_view name) {
  if (name.empty()) {
    return false;
  }
  for (char c : name) {
    if (!kTokenChars[static_cast<unsigned char>(c)]) {
      return false;
    }
  }
  return true;
}

bool IsValidFieldValue(absl::string_view value) {
  for (char c : value) {
    unsigned char byte = static_cast<unsigned char>(c);
    if ((byte < 0x20 && byte != '\t') || byte == 0x7f) {
      return false;
    }
  }
  return true;
}

void HeaderMap::Set(absl::string_view name, absl::string_view value) {
  Remove(name);
  Add(name, value);
}

void HeaderMap::Set(FieldId id, LiteralName name, absl::string_view value) {
  // One pass in the usual cases: the field is absent, or there once.
  size_t first = 0;
  while (first < entries_.size() && entries_[first].id != id) {
    ++first;
  }
  if (first == entries_.size()) {
    Add(id, name, value);
    return;
  }
  absl::string_view value_copy = CopyText(value);
  entries_[first].name = name.view();
  entries_[first].value = value_copy;
  size_t later = first + 1;
  while (later < entries_.size() && entries_[later].id != id) {
    ++later;
  }
  if (later < entries_.size()) {
    const Entry* kept = &entries_[first];
    RemoveIf([kept, id](const Entry& entry) { return entry.id == id && &entry != kept; });
  }
}

size_t HeaderMap::Remove(absl::string_view name) {
  return RemoveIf([name](const Entry& entry) { return FieldNameEquals(entry.name, name); });
}

const absl::string_view* HeaderMap::Get(FieldId id) const {
  for (const Entry& entry : entries()) {
    if (entry.id == id) {
      return &entry.value;
    }
  }
  return nullptr;
}

const absl::string_view* HeaderMap::Get(absl::string_view name) const {
  for (const Entry& entry : entries()) {
    if (FieldNameEquals(entry.name, name)) {
      return &entry.value;
    }
  }
  return nullptr;
}

bool HeaderMap::HasToken(absl::string_view name, absl::string_view token) const {
  for (const Entry& entry : entries()) {
    if (!FieldNameEquals(entry.name, name)) {
      continue;
    }
    for (absl::string_view element : absl::StrSplit(entry.value, ',')) {
      if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(element), token)) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace confgate::http
