// How the control-plane pieces (health scheduler, outlier detector, mode tracker) get their
// timers: from the dispatcher in the process, from a simulated clock in unit tests.
#pragma once

#include <functional>

#include "confgate/event/dispatcher.h"

namespace confgate::upstream {

using TimerFactory = std::function<event::TimerPtr(std::function<void()>)>;

// Timers of `dispatcher` (which must outlive the factory's users).
inline TimerFactory DispatcherTimers(event::Dispatcher& dispatcher) {
  return [&dispatcher](std::function<void()> callback) {
    return dispatcher.CreateTimer(std::move(callback));
  };
}

}  // namespace confgate::upstream
