// One Dispatcher per thread, wrapping a libevent event_base (libevent headers stay in src/).
// Post() is the only entry point that may be called from another thread.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "confgate/common/mutex.h"

struct event_base;
struct event;

namespace confgate::event {

// A one-shot timer; re-arm it with Enable(). Destroying it cancels it.
class Timer {
 public:
  virtual ~Timer() = default;
  virtual void Enable(absl::Duration timeout) = 0;
  virtual void Disable() = 0;
  virtual bool enabled() const = 0;
};
using TimerPtr = std::unique_ptr<Timer>;

// Objects whose destruction must wait until the current callback stack has unwound.
class DeferredDeletable {
 public:
  virtual ~DeferredDeletable() = default;
};

class Dispatcher;

// Work that runs once the callbacks of the current loop pass are done, before the loop waits
// again: a transport's write, gathering what its owner added over a whole callback. Costs no
// allocation and no libevent event of its own; destroying it cancels it.
class PassWork {
 public:
  virtual void RunPassWork() = 0;
  bool scheduled() const { return dispatcher_ != nullptr; }

 protected:
  PassWork() = default;
  ~PassWork();
  PassWork(const PassWork&) = delete;
  PassWork& operator=(const PassWork&) = delete;

 private:
  friend class Dispatcher;
  Dispatcher* dispatcher_ = nullptr;  // set while scheduled
  PassWork* prev_ = nullptr;
  PassWork* next_ = nullptr;
};

class Dispatcher {
 public:
  Dispatcher();
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Runs until Exit() is called.
  void Run();
  // Runs the callbacks that are ready now, without waiting (tests).
  void RunReady();
  // Stops Run() after the current iteration; safe only on the dispatcher's own thread (use
  // Post([&]{ d.Exit(); }) from elsewhere).
  void Exit();

  TimerPtr CreateTimer(std::function<void()> callback);
  // Runs `callback` on the dispatcher's thread, in order. Thread-safe.
  void Post(std::function<void()> callback);
  // Runs `work` after the current callbacks (once, however often it is scheduled before).
  void Schedule(PassWork& work);
  void Cancel(PassWork& work);
  // Destroys `object` after the current callback returns. Never throws: when memory runs out
  // the object is leaked instead.
  void DeferredDelete(std::unique_ptr<DeferredDeletable> object) noexcept;
  // Destroys what DeferredDelete() holds now, outside any callback (at shutdown, before the
  // objects those destructors use are gone). The loop does it on its own otherwise.
  void ClearDeferred();

  event_base* base() { return base_; }

 private:
  void RunPosted();
  void RunPassWork();

  event_base* base_;
  int wake_fd_ = -1;  // an eventfd: Post() from another thread wakes the loop through it
  ::event* post_event_;
  ::event* deferred_event_;
  ::event* pass_work_event_;
  PassWork* pass_work_head_ = nullptr;
  PassWork* pass_work_tail_ = nullptr;
  Mutex post_mu_;
  std::vector<std::function<void()>> posted_ ABSL_GUARDED_BY(post_mu_);
  std::vector<std::unique_ptr<DeferredDeletable>> deferred_;
  std::vector<std::unique_ptr<DeferredDeletable>> deferred_batch_;  // being destroyed
};

}  // namespace confgate::event
