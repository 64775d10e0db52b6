// The mutex confgate's shared state is guarded by. It carries clang's thread-safety attributes,
// so `-Wthread-safety` checks every ABSL_GUARDED_BY field, and it is a plain pthread mutex
// underneath, so ThreadSanitizer sees every lock and unlock. (absl::Mutex has the attributes,
// but Debian builds abseil without ThreadSanitizer hooks: its locking would be invisible to the
// TSan build and every guarded access would look like a race.)
#pragma once

#include <mutex>

#include "absl/base/thread_annotations.h"

namespace confgate {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mutex_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mutex_.unlock(); }

 private:
  std::mutex mutex_;
};

// Holds `mutex` for the enclosing scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mutex) ABSL_EXCLUSIVE_LOCK_FUNCTION(mutex) : mutex_(mutex) {
    mutex_->Lock();
  }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mutex_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mutex_;
};

}  // namespace confgate
