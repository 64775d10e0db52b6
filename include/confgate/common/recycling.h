// Whether freed memory is kept per thread for reuse (stream memory, buffers, heads' field lists,
// libevent's blocks). Not under AddressSanitizer: reused memory is never poisoned, so a
// use-after-free would go unseen there, and in production it would corrupt another request
// instead of crashing. The sanitizer build frees instead, so the tests check real lifetimes.
#pragma once

namespace confgate {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kRecycleMemory = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kRecycleMemory = false;
#else
inline constexpr bool kRecycleMemory = true;
#endif
#else
inline constexpr bool kRecycleMemory = true;
#endif

}  // namespace confgate
