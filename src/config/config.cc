#include "confgate/config/config.h"

#include "absl/strings/str_cat.h"

namespace confgate::config {

std::string SocketAddress::ToString() const {
  if (host.find(':') != std::string::npos) {
    return absl::StrCat("[", host, "]:", port);
  }
  return absl::StrCat(host, ":", port);
}

const char* RouteKindName(RouteKind kind) {
  switch (kind) {
    case RouteKind::kRead:
      return "read";
    case RouteKind::kWatch:
      return "watch";
    case RouteKind::kWrite:
      return "write";
    case RouteKind::kAuto:
      return "auto";
  }
  return "auto";
}

}  // namespace confgate::config
