// Checks of a request target that llhttp leaves to us.
#pragma once

#include "absl/strings/string_view.h"

namespace confgate::http {

// True when a segment of `path` is "." or "..", however it is spelled: %2E for a dot,
// ";params" after it, a backslash or an encoded slash or backslash as the separator.
bool HasDotSegment(absl::string_view path);

// A request target is absolute-path ["?" query] (or absolute-form): true when it has a control
// byte, SP, DEL or '#'.
bool HasForbiddenTargetByte(absl::string_view target);

}  // namespace confgate::http
