// Timers that fire when a test advances a SimulatedTimeSource: no sleeps, no event loop.
#pragma once

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "confgate/common/time_source.h"
#include "confgate/event/dispatcher.h"
#include "confgate/upstream/timer_factory.h"

namespace confgate::testing {

class FakeTimers {
 public:
  explicit FakeTimers(SimulatedTimeSource& time) : time_(time) {}

  upstream::TimerFactory Factory() {
    return [this](std::function<void()> callback) -> event::TimerPtr {
      auto timer = std::make_unique<Timer>(*this, std::move(callback));
      return timer;
    };
  }

  // Moves the clock by `d`, firing every timer that falls due on the way, in deadline order.
  void Advance(absl::Duration d) {
    MonotonicTime end = time_.Monotonic() + absl::ToChronoNanoseconds(d);
    while (true) {
      Timer* next = nullptr;
      for (Timer* timer : timers_) {
        if (timer->deadline_.has_value() && *timer->deadline_ <= end &&
            (next == nullptr || *timer->deadline_ < *next->deadline_)) {
          next = timer;
        }
      }
      if (next == nullptr) {
        break;
      }
      time_.Advance(absl::FromChrono(*next->deadline_ - time_.Monotonic()));
      next->deadline_.reset();
      next->callback_();
    }
    time_.Advance(absl::FromChrono(end - time_.Monotonic()));
  }
  // Fires the timers due now (a zero-delay Enable).
  void RunDue() { Advance(absl::ZeroDuration()); }

 private:
  class Timer final : public event::Timer {
   public:
    Timer(FakeTimers& owner, std::function<void()> callback)
        : owner_(owner), callback_(std::move(callback)) {
      owner_.timers_.push_back(this);
    }
    ~Timer() override { std::erase(owner_.timers_, this); }
    void Enable(absl::Duration timeout) override {
      deadline_ = owner_.time_.Monotonic() + absl::ToChronoNanoseconds(timeout);
    }
    void Disable() override { deadline_.reset(); }
    bool enabled() const override { return deadline_.has_value(); }

   private:
    friend class FakeTimers;
    FakeTimers& owner_;
    std::function<void()> callback_;
    std::optional<MonotonicTime> deadline_;
  };

  SimulatedTimeSource& time_;
  std::vector<Timer*> timers_;
};

}  // namespace confgate::testing
