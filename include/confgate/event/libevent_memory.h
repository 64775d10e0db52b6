// libevent's allocations through a per-thread cache of the blocks its buffers are made of.
//
// Every proxied request reads into an empty input buffer and adds a head to an empty output
// buffer, and libevent frees each buffer chain as soon as it is drained: four 1 KiB blocks per
// request. With dozens of connections served per loop pass, glibc's per-thread cache (seven
// blocks of a size) runs dry and the rest go through its bins, at several hundred instructions
// a block. The cache here keeps power-of-two blocks of 256 bytes to 8 KiB per thread (glibc's
// own caches stop at 1 KiB).
#pragma once

#include <cstddef>

namespace confgate::event {

// Installs the functions below as libevent's allocator. Call once, before any other libevent
// call (main does).
void UseBlockCacheForLibevent();

// The allocator itself (tests call it directly).
void* LibeventAllocate(size_t size);
void* LibeventReallocate(void* block, size_t size);
void LibeventFree(void* block);

}  // namespace confgate::event
