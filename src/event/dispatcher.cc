#include "confgate/event/dispatcher.h"

#include <event2/event.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <utility>

namespace confgate::event {
namespace {

class LibeventTimer final : public Timer {
 public:
  LibeventTimer(event_base* base, std::function<void()> callback) : callback_(std::move(callback)) {
    event_ = evtimer_new(base, &LibeventTimer::OnFire, this);
  }
  ~LibeventTimer() override { event_free(event_); }

  // confgate::event::Timer
  void Enable(absl::Duration timeout) override {
    timeval tv = absl::ToTimeval(timeout);
    evtimer_add(event_, &tv);
  }
  void Disable() override { evtimer_del(event_); }
  bool enabled() const override { return evtimer_pending(event_, nullptr) != 0; }

 private:
  static void OnFire(evutil_socket_t, short, void* arg) {
    static_cast<LibeventTimer*>(arg)->callback_();
  }

  std::function<void()> callback_;
  ::event* event_;
};

}  // namespace

Dispatcher::Dispatcher() : base_(event_base_new()) {
  // libevent's own thread support would take the base's lock around every event operation of
  // the data path; only Post() crosses threads, so it wakes the loop through an eventfd.
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    std::abort();  // no descriptor for the loop's own wake-ups at start-up: nothing can work
  }
  post_event_ = event_new(
      base_, wake_fd_, EV_READ | EV_PERSIST,
      [](evutil_socket_t, short, void* arg) { static_cast<Dispatcher*>(arg)->RunPosted(); }, this);
  event_add(post_event_, nullptr);
  deferred_event_ = event_new(
      base_, -1, 0,
      [](evutil_socket_t, short, void* arg) { static_cast<Dispatcher*>(arg)->ClearDeferred(); },
      this);
  pass_work_event_ = event_new(
      base_, -1, 0,
      [](evutil_socket_t, short, void* arg) { static_cast<Dispatcher*>(arg)->RunPassWork(); },
      this);
}

Dispatcher::~Dispatcher() {
  ClearDeferred();
  event_free(post_event_);
  event_free(deferred_event_);
  while (pass_work_head_ != nullptr) {
    Cancel(*pass_work_head_);
  }
  event_free(pass_work_event_);
  event_base_free(base_);
  close(wake_fd_);
}

void Dispatcher::Run() { event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY); }

void Dispatcher::RunReady() { event_base_loop(base_, EVLOOP_NONBLOCK); }

void Dispatcher::Exit() { event_base_loopbreak(base_); }

TimerPtr Dispatcher::CreateTimer(std::function<void()> callback) {
  return std::make_unique<LibeventTimer>(base_, std::move(callback));
}

void Dispatcher::Post(std::function<void()> callback) {
  bool was_empty;
  {
    MutexLock lock(&post_mu_);
    was_empty = posted_.empty();
    posted_.push_back(std::move(callback));
  }
  // A non-empty queue has a wake-up pending already: RunPosted() reads the eventfd before it
  // takes the queue, so nothing posted is left behind.
  if (was_empty) {
    uint64_t one = 1;
    while (write(wake_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
  }
}

void Dispatcher::RunPosted() {
  uint64_t count;
  while (read(wake_fd_, &count, sizeof(count)) < 0 && errno == EINTR) {
  }
  std::vector<std::function<void()>> batch;
  {
    MutexLock lock(&post_mu_);
    batch.swap(posted_);
  }
  for (auto& callback : batch) {
    callback();
  }
}

PassWork::~PassWork() {
  if (dispatcher_ != nullptr) {
    dispatcher_->Cancel(*this);
  }
}

void Dispatcher::Schedule(PassWork& work) {
  if (work.dispatcher_ != nullptr) {
    return;
  }
  work.dispatcher_ = this;
  work.prev_ = pass_work_tail_;
  work.next_ = nullptr;
  if (pass_work_tail_ != nullptr) {
    pass_work_tail_->next_ = &work;
  } else {
    pass_work_head_ = &work;
    event_active(pass_work_event_, 0, 0);
  }
  pass_work_tail_ = &work;
}

void Dispatcher::Cancel(PassWork& work) {
  if (work.dispatcher_ != this) {
    return;
  }
  (work.prev_ != nullptr ? work.prev_->next_ : pass_work_head_) = work.next_;
  (work.next_ != nullptr ? work.next_->prev_ : pass_work_tail_) = work.prev_;
  work.dispatcher_ = nullptr;
  work.prev_ = work.next_ = nullptr;
}

void Dispatcher::RunPassWork() {
  // Work scheduled while this runs (a write that drained and let its owner answer) runs in
  // the same pass.
  while (pass_work_head_ != nullptr) {
    PassWork& work = *pass_work_head_;
    Cancel(work);
    work.RunPassWork();  // may destroy any scheduled work, `work` included
  }
}

void Dispatcher::DeferredDelete(std::unique_ptr<DeferredDeletable> object) noexcept {
  try {
    deferred_.push_back(std::move(object));  // (unmoved when the list cannot grow)
  } catch (const std::bad_alloc&) {
    // No room to remember it: the object is leaked. Destroying it now could pull it from
    // under the callback that is running it, and this is called while closing for want of
    // memory, where nothing may throw.
    static_cast<void>(object.release());
    return;
  }
  if (deferred_.size() == 1) {
    event_active(deferred_event_, 0, 0);
  }
}

void Dispatcher::ClearDeferred() {
  // Destructors may defer further objects; loop until none are left. The two lists swap
  // roles and keep their room, so deferring allocates nothing once they have grown. (Only the
  // deferred event and the destructor call this, never a deferred object's destructor.)
  while (!deferred_.empty()) {
    deferred_batch_.swap(deferred_);
    deferred_batch_.clear();
  }
}

}  // namespace confgate::event
