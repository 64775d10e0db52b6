// Active health checks on the main thread: one probe at a time per checked host, the next one
// after the tracker's interval (with jitter), and the start-up warm-up. What a result means
// for availability is the caller's (the control plane's) business.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "absl/time/time.h"
#include "confgate/config/config.h"
#include "confgate/event/dispatcher.h"
#include "confgate/network/tls.h"
#include "confgate/upstream/health.h"
#include "confgate/upstream/host.h"
#include "confgate/upstream/timer_factory.h"

namespace confgate::upstream {

class HealthCheckScheduler {
 public:
  // How one probe reports: once, from the event loop.
  using ProbeDone = std::function<void(CheckResult result, int status)>;
  // Starts a probe of `host`; the scheduler destroys it (deferred) once it reported.
  using ProbeFactory = std::function<std::unique_ptr<event::DeferredDeletable>(
      Host& host, const config::HealthCheckConfig& check,
      std::shared_ptr<const network::ClientTls> tls, ProbeDone done)>;
  // Every result, after the tracker counted it.
  using ResultCallback = std::function<void(const Host& host, CheckResult result, int status,
                                            ActiveHealthTracker::Transition transition)>;

  // One host to check (or, with no `check`, to stop checking).
  struct Target {
    HostSharedPtr host;
    std::optional<config::HealthCheckConfig> check;
    std::shared_ptr<const network::ClientTls> tls;
  };

  // Probes over real connections on `dispatcher`.
  static ProbeFactory RealProbes(event::Dispatcher& dispatcher);

  // `dispatcher` destroys finished probes; `unit` draws uniformly from [0, 1) for the jitter.
  HealthCheckScheduler(event::Dispatcher& dispatcher, TimerFactory timers, ProbeFactory probes,
                       std::function<double()> unit, ResultCallback on_result);
  ~HealthCheckScheduler();

  // The hosts of a (re)loaded snapshot. A host whose HostId was known keeps its tracker (with
  // the new settings), its timer and its probe in flight; new hosts start unknown and are
  // checked at once after a reload (Start() checks them at start-up); removed ones stop.
  void SetTargets(std::vector<Target> targets);
  // Starts the checks. `on_warm` runs once, when every checked host has a first result or one
  // interval + timeout has passed, whichever comes first (at once without checks).
  void Start(std::function<void()> on_warm);

  // The active-check state; nullopt when the host is not checked.
  std::optional<ActiveState> state(HostId id) const;

 private:
  struct Entry {
    HostSharedPtr host;
    config::HealthCheckConfig check;
    std::shared_ptr<const network::ClientTls> tls;
    std::unique_ptr<ActiveHealthTracker> tracker;     // null without health_check
    std::unique_ptr<event::DeferredDeletable> probe;  // the check in flight
    event::TimerPtr check_timer;
    bool first_result_seen = false;
  };

  void RunCheck(Entry& entry);
  void OnResult(Entry& entry, CheckResult result, int status);
  void MaybeWarm();

  event::Dispatcher& dispatcher_;
  TimerFactory timers_;
  ProbeFactory probes_;
  std::function<double()> unit_;
  ResultCallback on_result_;
  std::unordered_map<HostId, std::unique_ptr<Entry>> entries_;
  std::vector<Entry*> order_;  // entries in snapshot order, for a deterministic first round
  bool started_ = false;
  std::function<void()> on_warm_;
  event::TimerPtr warm_timer_;
  size_t awaiting_first_result_ = 0;
};

}  // namespace confgate::upstream
