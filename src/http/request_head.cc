// The recycled strings of request heads (see ~RequestHead in codec.h).
#include <string>

#include "confgate/common/recycling.h"
#include "confgate/http/codec.h"

namespace confgate::http {
namespace {

// Enough for the heads alive at one moment (three strings each); beyond that, idle memory
// wins. A long target's buffer is not kept for everyone.
struct SpareTexts : SpareStack<std::string> {
  SpareTexts() : SpareStack(3 * 128) {}
};
constexpr size_t kMaxKeptText = 512;
const size_t kShortText = std::string().capacity();  // fits in the string itself: nothing to keep

bool Worth(const std::string& text) {
  return text.capacity() > kShortText && text.capacity() <= kMaxKeptText;
}

void Keep(SpareTexts& spares, std::string& text) {
  if (Worth(text)) {
    text.clear();
    spares.Keep(text);
  }
}

}  // namespace

RequestHead::~RequestHead() {
  // Most heads destroyed are moved-from or short: nothing to keep, no look-up.
  if (!kRecycleMemory || !(Worth(target) || Worth(path) || Worth(query))) {
    return;
  }
  if (SpareTexts* spares = PerThread<SpareTexts>::Get()) {
    Keep(*spares, target);
    Keep(*spares, path);
    Keep(*spares, query);
  }
}

std::string TakeSpareText() {
  if (kRecycleMemory) {
    if (SpareTexts* spares = PerThread<SpareTexts>::Get()) {
      return spares->Take();
    }
  }
  return std::string();
}

}  // namespace confgate::http
