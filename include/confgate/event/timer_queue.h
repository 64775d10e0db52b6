// Timers for the data path: one per connection and per request, armed and disarmed on every
// exchange. A libevent timer costs an allocation of its own and a heap operation each time it
// is armed; these cost neither. Each is embedded in its owner, and a queue keeps one list per
// distinct duration (a connection's header and idle timeouts, a route's response timeout, a
// watch's wait in whole seconds: a few dozen at most). Timers armed with the same duration expire
// in the order they were armed, so appending keeps each list sorted, and one libevent timer per
// queue wakes for the earliest.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "confgate/common/time_source.h"
#include "confgate/event/dispatcher.h"

namespace confgate::event {

class TimerQueue;

// A one-shot timer kept in a TimerQueue (which must outlive it). Not movable: the queue links
// to it.
class QueuedTimer final : public Timer {
 public:
  QueuedTimer(TimerQueue& queue, std::function<void()> callback)
      : queue_(&queue), callback_(std::move(callback)) {}
  ~QueuedTimer() override { Disable(); }
  QueuedTimer(const QueuedTimer&) = delete;
  QueuedTimer& operator=(const QueuedTimer&) = delete;

  // confgate::event::Timer
  void Enable(absl::Duration timeout) override;
  void Disable() override;
  bool enabled() const override { return list_ != nullptr; }

 private:
  friend class TimerQueue;
  struct List;

  TimerQueue* queue_;
  std::function<void()> callback_;
  List* list_ = nullptr;  // the list it is armed in, null when disarmed
  // The list of the last Enable() and its duration: timers are re-armed with the same one
  // nearly every time, so the queue's look-up is skipped. Valid while the queue's
  // lists_generation_ is list_generation_ (pruning lists changes it).
  List* last_list_ = nullptr;
  absl::Duration last_timeout_;
  uint64_t list_generation_ = 0;
  QueuedTimer* prev_ = nullptr;
  QueuedTimer* next_ = nullptr;
  MonotonicTime deadline_{};
};

class TimerQueue {
 public:
  TimerQueue(Dispatcher& dispatcher, TimeSource& time);
  ~TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Runs the callbacks of every timer whose deadline has passed, earliest first within each
  // duration (the libevent timer calls it; tests call it after moving a simulated clock).
  void RunExpired();
  // How many timers are armed (tests).
  size_t armed() const { return armed_; }

 private:
  friend class QueuedTimer;
  using List = QueuedTimer::List;

  List& ListFor(absl::Duration timeout);
  void Prune();
  void Link(QueuedTimer& timer, List& list);
  void Unlink(QueuedTimer& timer);
  // Makes the libevent timer fire no later than `deadline`.
  void WakeBy(MonotonicTime deadline);
  void ArmForEarliest();

  // Empty lists are dropped when a new one would make this many.
  static constexpr size_t kPruneAt = 64;

  TimeSource& time_;
  TimerPtr wakeup_;
  bool running_ = false;  // inside RunExpired()
  bool wakeup_armed_ = false;
  MonotonicTime wakeup_at_{};
  std::vector<std::unique_ptr<List>> lists_;
  uint64_t lists_generation_ = 1;                  // changes whenever lists are dropped
  absl::flat_hash_map<int64_t, List*> by_length_;  // nanoseconds -> list
  size_t armed_ = 0;
};

}  // namespace confgate::event
