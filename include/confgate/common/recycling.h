// Keeping freed memory for reuse on the thread that freed it (stream memory, buffers, heads'
// field lists and text blocks, libevent's blocks): the pieces those recycling lists share.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace confgate {

// Whether freed memory is kept per thread for reuse. Not under AddressSanitizer: reused memory
// is never poisoned, so a use-after-free would go unseen there, and in production it would
// corrupt another request instead of crashing. The sanitizer build frees instead, so the tests
// check real lifetimes.
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

struct KeepAsIs {
  template <typename T>
  void operator()(T&) const {}
};

// A bounded stack of spare objects; `Release` disposes of those still held when it is
// destroyed. Its room is reserved up front, so Keep() never allocates: it may run in
// destructors and noexcept operator delete.
template <typename T, typename Release = KeepAsIs>
class SpareStack {
 public:
  explicit SpareStack(size_t limit = 0) { items_.reserve(limit); }
  SpareStack(SpareStack&&) = default;
  SpareStack& operator=(SpareStack&&) = default;
  ~SpareStack() {
    for (T& item : items_) {
      Release()(item);
    }
  }

  // The object kept last, or T{} (null, empty) when there is none.
  T Take() {
    if (items_.empty()) {
      return T{};
    }
    T item = std::move(items_.back());
    items_.pop_back();
    return item;
  }
  // Keeps `item` (moving from it) unless the stack is full; false leaves it to the caller.
  bool Keep(T& item) {
    if (items_.size() == items_.capacity()) {
      return false;
    }
    items_.push_back(std::move(item));
    return true;
  }

 private:
  std::vector<T> items_;
};

// The calling thread's instance of T, or null once that instance is destroyed: objects may
// still be freed while a thread, or the program, ends, and must then bypass the recycling. Use
// a type of its own for each list (one instance per type and thread).
template <typename T>
class PerThread {
 public:
  static T* Get() {
    if (gone_) {
      return nullptr;
    }
    thread_local Instance instance;
    return &instance.value;
  }

 private:
  struct Instance {
    T value;
    ~Instance() { gone_ = true; }  // before `value` goes: what it frees bypasses it
  };
  // Trivially destructible: readable while the thread ends.
  static inline thread_local bool gone_ = false;
};

}  // namespace confgate
