#include "confgate/http/header_map.h"

#include <algorithm>
#include <array>

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
  Entry& entry = entries_.emplace_back();  // built in place (clang has no aggregate paren-init)
  entry.name = std::move(name);
  entry.value = std::move(value);
}

void HeaderMap::Set(absl::string_view name, std::string value) {
  Remove(name);
  entries_.push_back(Entry{std::string(name), std::move(value)});
}

size_t HeaderMap::Remove(absl::string_view name) {
  size_t before = entries_.size();
  entries_.erase(
      std::remove_if(entries_.begin(), entries_.end(),
                     [name](const Entry& entry) { return FieldNameEquals(entry.name, name); }),
      entries_.end());
  return before - entries_.size();
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
