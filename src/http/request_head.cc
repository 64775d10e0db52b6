// A request head's target: bytes in the head's own text (see HeaderMap).
#include "confgate/http/codec.h"

namespace confgate::http {

void RequestHead::SetTarget(absl::string_view origin_form) {
  target_ = headers.AddText(origin_form);
  path_size_ = std::min(target_.find('?'), target_.size());
}

RequestHead& RequestHead::operator=(const RequestHead& other) {
  if (this != &other) {
    method = other.method;
    version_minor = other.version_minor;
    headers = other.headers;
    keep_alive = other.keep_alive;
    framing = other.framing;
    content_length = other.content_length;
    expect_continue = other.expect_continue;
    SetTarget(other.target());  // into this head's text: the other's goes with it
  }
  return *this;
}

}  // namespace confgate::http
