#include "confgate/event/libevent_memory.h"

#include <event2/event.h>
#include <malloc.h>

#include <array>
#include <cstdlib>
#include <vector>

#include "confgate/common/recycling.h"

namespace confgate::event {
namespace {

// Power-of-two blocks of 256 bytes to 8 KiB, the sizes libevent's small buffer chains come in.
constexpr size_t kSmallestCached = 256;
constexpr size_t kLargestCached = 8 * 1024;
constexpr size_t kClasses = 6;
// Per size class and thread, so a burst's memory goes back to malloc.
constexpr size_t kBytesPerClass = 64 * 1024;

// Set once this thread's cache is destroyed (a trivially destructible flag stays readable while
// the thread, or the program, ends): blocks freed after that go straight to malloc.
thread_local bool cache_gone = false;

class BlockCache {
 public:
  BlockCache() {
    for (size_t i = 0; i < kClasses; ++i) {
      free_[i].reserve(kBytesPerClass / (kSmallestCached << i));
    }
  }
  ~BlockCache() {
    cache_gone = true;
    for (auto& blocks : free_) {
      for (void* block : blocks) {
        std::free(block);
      }
    }
  }

  void* Take(size_t size_class) {
    std::vector<void*>& blocks = free_[size_class];
    if (blocks.empty()) {
      return nullptr;
    }
    void* block = blocks.back();
    blocks.pop_back();
    return block;
  }
  bool Keep(size_t size_class, void* block) {
    std::vector<void*>& blocks = free_[size_class];
    if (blocks.size() == blocks.capacity()) {
      return false;
    }
    blocks.push_back(block);  // within the reserved capacity: no allocation
    return true;
  }

 private:
  std::array<std::vector<void*>, kClasses> free_;
};

BlockCache& Cache() {
  thread_local BlockCache cache;
  return cache;
}

// The class a request of exactly `size` bytes is served from, or kClasses.
size_t ClassOfRequest(size_t size) {
  if (size < kSmallestCached || size > kLargestCached || (size & (size - 1)) != 0) {
    return kClasses;
  }
  size_t size_class = 0;
  for (size_t block = kSmallestCached; block < size; block <<= 1) {
    ++size_class;
  }
  return size_class;
}

// The class a freed block can serve: malloc reports a block's usable size, which is its request
// rounded up a little (and exactly the request under AddressSanitizer). No header is needed.
size_t ClassOfBlock(void* block) {
  size_t usable = malloc_usable_size(block);
  for (size_t i = 0; i < kClasses; ++i) {
    size_t size = kSmallestCached << i;
    if (usable >= size && usable < size + 16) {
      return i;
    }
  }
  return kClasses;
}

}  // namespace

void* LibeventAllocate(size_t size) {
  size_t size_class = ClassOfRequest(size);
  if (size_class != kClasses && !cache_gone) {
    if (void* block = Cache().Take(size_class)) {
      return block;
    }
  }
  return std::malloc(size);
}

void LibeventFree(void* block) {
  if (block == nullptr) {
    return;
  }
  size_t size_class = ClassOfBlock(block);
  if (size_class != kClasses && !cache_gone && Cache().Keep(size_class, block)) {
    return;
  }
  std::free(block);
}

void* LibeventReallocate(void* block, size_t size) { return std::realloc(block, size); }

void UseBlockCacheForLibevent() {
  if (!kRecycleMemory) {
    return;  // see recycling.h
  }
  event_set_mem_functions(&LibeventAllocate, &LibeventReallocate, &LibeventFree);
}

}  // namespace confgate::event
