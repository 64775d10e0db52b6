#include "confgate/event/libevent_memory.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace confgate::event {
namespace {

TEST(LibeventMemory, FreedChainBlocksAreHandedOutAgain) {
  void* first = LibeventAllocate(1024);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % 16, 0u);  // malloc's alignment kept
  std::memset(first, 'x', 1024);
  LibeventFree(first);
  void* second = LibeventAllocate(1024);
  EXPECT_EQ(second, first);
  void* other_size = LibeventAllocate(2048);
  EXPECT_NE(other_size, first);
  LibeventFree(second);
  LibeventFree(other_size);
}

TEST(LibeventMemory, OddSizesGoStraightToMalloc) {
  void* odd = LibeventAllocate(1000);
  std::memset(odd, 'y', 1000);
  LibeventFree(odd);
  void* large = LibeventAllocate(1 << 20);
  std::memset(large, 'z', 1 << 20);
  LibeventFree(large);
  LibeventFree(nullptr);
}

TEST(LibeventMemory, ReallocateKeepsTheContents) {
  char* block = static_cast<char*>(LibeventAllocate(100));
  std::memcpy(block, "chain", 6);
  block = static_cast<char*>(LibeventReallocate(block, 1024));  // into a cached size
  EXPECT_STREQ(block, "chain");
  block = static_cast<char*>(LibeventReallocate(block, 5000));  // out of it
  EXPECT_STREQ(block, "chain");
  block = static_cast<char*>(LibeventReallocate(block, 70000));  // malloc's realloc
  EXPECT_STREQ(block, "chain");
  LibeventFree(block);
  void* fresh = LibeventReallocate(nullptr, 512);
  EXPECT_NE(fresh, nullptr);
  LibeventFree(fresh);
}

TEST(LibeventMemory, BlocksMayBeFreedOnAnotherThread) {
  void* block = LibeventAllocate(4096);
  std::thread other([block] {
    LibeventFree(block);                   // kept by the other thread's cache
    LibeventFree(LibeventAllocate(4096));  // and freed when that thread ends
  });
  other.join();
  void* mine = LibeventAllocate(4096);
  EXPECT_NE(mine, nullptr);
  LibeventFree(mine);
}

}  // namespace
}  // namespace confgate::event
