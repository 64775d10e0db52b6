#include "confgate/event/libevent_memory.h"

#include <event2/event.h>
#include <malloc.h>

#include <array>
#include <cstdlib>

#include "confgate/common/recycling.h"

namespace confgate::event {
namespace {

// Power-of-two blocks of 256 bytes to 8 KiB, the sizes libevent's small buffer chains come in.
constexpr size_t kSmallestCached = 256;
constexpr size_t kLargestCached = 8 * 1024;
constexpr size_t kClasses = 6;
// Per size class and thread, so a burst's memory goes back to malloc.
constexpr size_t kBytesPerClass = 64 * 1024;

struct FreeBlock {
  void operator()(void* block) const { std::free(block); }
};

struct BlockCache {
  BlockCache() {
    for (size_t i = 0; i < kClasses; ++i) {
      by_class[i] = SpareStack<void*, FreeBlock>(kBytesPerClass / (kSmallestCached << i));
    }
  }
  std::array<SpareStack<void*, FreeBlock>, kClasses> by_class;
};

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
  if (size_class != kClasses) {
    if (BlockCache* cache = PerThread<BlockCache>::Get()) {
      if (void* block = cache->by_class[size_class].Take()) {
        return block;
      }
    }
  }
  return std::malloc(size);
}

void LibeventFree(void* block) {
  if (block == nullptr) {
    return;
  }
  size_t size_class = ClassOfBlock(block);
  if (size_class != kClasses) {
    BlockCache* cache = PerThread<BlockCache>::Get();
    if (cache != nullptr && cache->by_class[size_class].Keep(block)) {
      return;
    }
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
