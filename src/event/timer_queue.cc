#include "confgate/event/timer_queue.h"

#include <algorithm>

namespace confgate::event {

struct QueuedTimer::List {
  MonotonicTime::duration timeout;
  QueuedTimer* head = nullptr;  // earliest deadline
  QueuedTimer* tail = nullptr;
};

void QueuedTimer::Enable(absl::Duration timeout) {
  Disable();
  if (last_list_ == nullptr || timeout != last_timeout_ ||
      list_generation_ != queue_->lists_generation_) {
    last_list_ = &queue_->ListFor(timeout);
    last_timeout_ = timeout;
    list_generation_ = queue_->lists_generation_;
  }
  deadline_ = queue_->time_.Monotonic() + last_list_->timeout;
  queue_->Link(*this, *last_list_);
}

void QueuedTimer::Disable() {
  if (list_ != nullptr) {
    queue_->Unlink(*this);
  }
}

TimerQueue::TimerQueue(Dispatcher& dispatcher, TimeSource& time)
    : time_(time), wakeup_(dispatcher.CreateTimer([this] {
        wakeup_armed_ = false;
        RunExpired();
      })) {}

TimerQueue::~TimerQueue() {
  // Timers that outlive the queue must not reach back into it.
  for (auto& list : lists_) {
    for (QueuedTimer* timer = list->head; timer != nullptr; timer = timer->next_) {
      timer->list_ = nullptr;
    }
  }
}

TimerQueue::List& TimerQueue::ListFor(absl::Duration timeout) {
  // Beyond ten years is "never" (and stays clear of overflow when added to the clock).
  absl::Duration bounded = std::clamp(timeout, absl::ZeroDuration(), absl::Hours(24 * 365 * 10));
  MonotonicTime::duration length = absl::ToChronoNanoseconds(bounded);
  // The first few lists are the connections' and routes' timeouts, armed on every request: a
  // look at them is cheaper than hashing.
  for (size_t i = 0; i < std::min<size_t>(lists_.size(), 4); ++i) {
    if (lists_[i]->timeout == length) {
      return *lists_[i];
    }
  }
  auto found = by_length_.find(length.count());
  if (found != by_length_.end()) {
    return *found->second;
  }
  if (lists_.size() >= kPruneAt && !running_) {
    Prune();
  }
  lists_.push_back(std::make_unique<List>());
  lists_.back()->timeout = length;
  by_length_[length.count()] = lists_.back().get();
  return *lists_.back();
}

void TimerQueue::Prune() {
  // A reload that changes timeouts leaves empty lists behind. Never while RunExpired() walks
  // the lists.
  ++lists_generation_;  // timers may remember a list dropped here
  lists_.erase(std::remove_if(lists_.begin(), lists_.end(),
                              [this](const std::unique_ptr<List>& list) {
                                if (list->head != nullptr) {
                                  return false;
                                }
                                by_length_.erase(list->timeout.count());
                                return true;
                              }),
               lists_.end());
}

void TimerQueue::Link(QueuedTimer& timer, List& list) {
  timer.list_ = &list;
  timer.prev_ = list.tail;
  timer.next_ = nullptr;
  if (list.tail != nullptr) {
    list.tail->next_ = &timer;
  } else {
    list.head = &timer;
  }
  list.tail = &timer;
  ++armed_;
  WakeBy(timer.deadline_);
}

void TimerQueue::Unlink(QueuedTimer& timer) {
  List& list = *timer.list_;
  (timer.prev_ != nullptr ? timer.prev_->next_ : list.head) = timer.next_;
  (timer.next_ != nullptr ? timer.next_->prev_ : list.tail) = timer.prev_;
  timer.list_ = nullptr;
  timer.prev_ = timer.next_ = nullptr;
  --armed_;
  // The wake-up stays as it is: when it finds nothing due, it re-arms for what is left.
}

void TimerQueue::WakeBy(MonotonicTime deadline) {
  if (wakeup_armed_ && wakeup_at_ <= deadline) {
    return;  // the common case: a later deadline than one already waited for
  }
  wakeup_armed_ = true;
  wakeup_at_ = deadline;
  wakeup_->Enable(absl::FromChrono(std::max<MonotonicTime::duration>(
      deadline - time_.Monotonic(), MonotonicTime::duration::zero())));
}

void TimerQueue::RunExpired() {
  MonotonicTime now = time_.Monotonic();
  running_ = true;
  // By index: a callback may add a list (never remove one while running_).
  for (size_t i = 0; i < lists_.size(); ++i) {
    // Re-read the head each time: a callback may disarm, re-arm or destroy other timers.
    while (lists_[i]->head != nullptr && lists_[i]->head->deadline_ <= now) {
      QueuedTimer& timer = *lists_[i]->head;
      Unlink(timer);
      timer.callback_();  // last use of `timer`: its owner may be gone after this
    }
  }
  running_ = false;
  ArmForEarliest();
}

void TimerQueue::ArmForEarliest() {
  bool any = false;
  MonotonicTime earliest{};
  for (auto& list : lists_) {
    if (list->head != nullptr && (!any || list->head->deadline_ < earliest)) {
      earliest = list->head->deadline_;
      any = true;
    }
  }
  if (!any) {
    wakeup_->Disable();
    wakeup_armed_ = false;
    return;
  }
  wakeup_armed_ = false;
  WakeBy(earliest);
}

}  // namespace confgate::event
