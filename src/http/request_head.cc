// A request head's target: bytes in the head's own text (see HeaderMap).
#include <algorithm>
#include <utility>

#include "confgate/http/codec.h"

namespace confgate::http {

void RequestHead::SetTarget(absl::string_view origin_form) {
  target_ = headers.AddText(origin_form);
  path_size_ = std::min(target_.find('?'), target_.size());
}

template <typename Other>
void RequestHead::AssignMembers(Other&& other) {
  method = std::forward<Other>(other).method;
  version_minor = other.version_minor;
  headers = std::forward<Other>(other).headers;
  keep_alive = other.keep_alive;
  framing = other.framing;
  content_length = other.content_length;
  expect_continue = other.expect_continue;
}

RequestHead& RequestHead::operator=(const RequestHead& other) {
  if (this != &other) {
    AssignMembers(other);
    SetTarget(other.target());  // into this head's text: the other's goes with it
  }
  return *this;
}

RequestHead& RequestHead::operator=(RequestHead&& other) noexcept {
  if (this != &other) {
    AssignMembers(std::move(other));  // the text blocks, with the target's bytes, change hands
    target_ = std::exchange(other.target_, absl::string_view("", 0));
    path_size_ = std::exchange(other.path_size_, 0);
  }
  return *this;
}

}  // namespace confgate::http
