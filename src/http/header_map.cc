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

// RFC 9110 tchar, as a table: the codec checks every header name of every message with it.
constexpr std::array<bool, 256> kTokenChars = [] {
  std::array<bool, 256> table{};
  for (int c = '0'; c <= '9'; ++c) table[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) table[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) table[c] = true;
  for (char c : absl::string_view("!#$%&'*+-.^_`|~")) table[static_cast<unsigned char>(c)] = true;
  return table;
}();

// Each tchar lowercased; 0 for bytes that are not tchar.
constexpr std::array<char, 256> kLowerTokenChars = [] {
  std::array<char, 256> table{};
  for (int c = 0; c < 256; ++c) {
    if (kTokenChars[c]) {
      table[c] = static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    }
  }
  return table;
}();

// Field lists of heads that are gone, emptied, for the next heads made on this thread. Enough
// for the heads alive at one moment; beyond that, idle memory wins.
struct SpareFieldLists : SpareStack<std::vector<HeaderMap::Entry>> {
  SpareFieldLists() : SpareStack(256) {}
};

// A head with thousands of fields must not leave a list that size behind for every head.
constexpr size_t kMaxRecycledFields = 64;

}  // namespace

void HeaderMap::Reserve(size_t fields) {
  if (kRecycleMemory && entries_.capacity() == 0) {
    if (SpareFieldLists* spares = PerThread<SpareFieldLists>::Get()) {
      entries_ = spares->Take();
    }
  }
  entries_.reserve(fields);
}

void HeaderMap::Recycle() {
  if (!kRecycleMemory || entries_.capacity() == 0 || entries_.capacity() > kMaxRecycledFields) {
    return;
  }
  if (SpareFieldLists* spares = PerThread<SpareFieldLists>::Get()) {
    entries_.clear();
    spares->Keep(entries_);
  }
}

FieldId ClassifyFieldName(absl::string_view name) {
  // Every known name is at most 19 bytes: longer ones are only checked. Shorter ones are
  // lowercased as they are checked, then compared whole by length, in fixed-size compares the
  // compiler turns into a few loads.
  constexpr size_t kLongestKnown = 19;
  size_t size = name.size();
  if (size > kLongestKnown) {
    return IsValidFieldName(name) ? FieldId::kOther : FieldId::kInvalid;
  }
  if (size == 0) {
    return FieldId::kInvalid;
  }
  char lower[kLongestKnown];
  for (size_t i = 0; i < size; ++i) {
    char c = kLowerTokenChars[static_cast<unsigned char>(name[i])];
    if (c == 0) {
      return FieldId::kInvalid;
    }
    lower[i] = c;
  }
  auto is = [&lower]<size_t N>(const char(&known)[N]) {
    return std::memcmp(lower, known, N - 1) == 0;
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

void HeaderMap::Add(std::string name, std::string value) {
  FieldId id = ClassifyFieldName(name);  // before `name` is moved from
  Add(id, std::move(name), std::move(value));
}

void HeaderMap::Add(FieldId id, std::string name, std::string value) {
  Entry& entry = entries_.emplace_back();  // built in place (clang has no aggregate paren-init)
  entry.id = id;
  entry.name = std::move(name);
  entry.value = std::move(value);
}

void HeaderMap::Set(absl::string_view name, std::string value) {
  Remove(name);
  Add(std::string(name), std::move(value));
}

void HeaderMap::Set(FieldId id, absl::string_view name, std::string value) {
  size_t kept = 0;
  Entry* reused = nullptr;
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].id == id) {
      if (reused == nullptr) {
        reused = &entries_[i];  // the first one is rewritten where it is
      } else {
        continue;
      }
    }
    if (kept != i) {
      entries_[kept] = std::move(entries_[i]);
      if (reused == &entries_[i]) {
        reused = &entries_[kept];
      }
    }
    ++kept;
  }
  entries_.resize(kept);
  if (reused == nullptr) {
    Entry& entry = entries_.emplace_back();
    entry.id = id;
    entry.name.assign(name.data(), name.size());
    entry.value = std::move(value);
    return;
  }
  reused->name.assign(name.data(), name.size());
  reused->value = std::move(value);
}

size_t HeaderMap::Remove(absl::string_view name) {
  size_t before = entries_.size();
  entries_.erase(
      std::remove_if(entries_.begin(), entries_.end(),
                     [name](const Entry& entry) { return FieldNameEquals(entry.name, name); }),
      entries_.end());
  return before - entries_.size();
}

const std::string* HeaderMap::Get(FieldId id) const {
  for (const Entry& entry : entries_) {
    if (entry.id == id) {
      return &entry.value;
    }
  }
  return nullptr;
}

const std::string* HeaderMap::Get(absl::string_view name) const {
  for (const Entry& entry : entries_) {
    if (FieldNameEquals(entry.name, name)) {
      return &entry.value;
    }
  }
  return nullptr;
}

bool HeaderMap::HasToken(absl::string_view name, absl::string_view token) const {
  for (const Entry& entry : entries_) {
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
