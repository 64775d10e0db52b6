#include "confgate/http/header_map.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace confgate::http {

void HeaderMap::Add(std::string name, std::string value) {
  entries_.push_back(Entry{std::move(name), std::move(value)});
}

void HeaderMap::Set(absl::string_view name, std::string value) {
  Remove(name);
  entries_.push_back(Entry{std::string(name), std::move(value)});
}

size_t HeaderMap::Remove(absl::string_view name) {
  size_t before = entries_.size();
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [name](const Entry& entry) {
                                  return absl::EqualsIgnoreCase(entry.name, name);
                                }),
                 entries_.end());
  return before - entries_.size();
}

const std::string* HeaderMap::Get(absl::string_view name) const {
  for (const Entry& entry : entries_) {
    if (absl::EqualsIgnoreCase(entry.name, name)) {
      return &entry.value;
    }
  }
  return nullptr;
}

bool HeaderMap::HasToken(absl::string_view name, absl::string_view token) const {
  for (const Entry& entry : entries_) {
    if (!absl::EqualsIgnoreCase(entry.name, name)) {
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
