// Reloads of the upstream file, read and parsed on a loader thread: yaml-cpp needs seconds for
// a large file, and on the main thread that would stall the admin listener (/healthz, /metrics),
// health checks and DNS. The parsed result comes back to the main thread through its
// dispatcher, where it is built into a snapshot and applied.
//
// Triggers (SIGHUP, the file watch, POST /reload) that arrive while a load runs are folded into
// one more load after it: the file may have changed since the running load read it. Every
// trigger's callback gets the result of the first load that started after the trigger.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "confgate/config/loader.h"
#include "confgate/event/dispatcher.h"

namespace confgate::server {

class ConfigReloader {
 public:
  // Runs on the loader thread; reads and validates the file.
  using Load = std::function<config::LoadResult()>;
  // Runs on the main thread with what Load returned; builds and applies it (or reports why
  // not) and returns the reload's result.
  using Apply = std::function<absl::Status(config::LoadResult loaded, const std::string& trigger)>;
  using Done = std::function<void(absl::Status)>;

  ConfigReloader(event::Dispatcher& dispatcher, Load load, Apply apply);
  // Waits for a load in flight; callbacks still waiting are dropped, not called.
  ~ConfigReloader();
  ConfigReloader(const ConfigReloader&) = delete;
  ConfigReloader& operator=(const ConfigReloader&) = delete;

  // Main thread. Starts a load, or folds this trigger into the one queued behind the load that
  // runs. `done` (optional) gets the result.
  void Reload(const std::string& trigger, Done done = nullptr);

  bool loading() const { return loader_.joinable(); }
  // How many loads ran, for tests.
  uint64_t loads_started() const { return loads_started_; }

 private:
  struct Batch {
    std::string trigger;
    std::vector<Done> waiting;
  };
  // Lets a posted result find its reloader, or see that it is gone (main thread only).
  struct Link {
    ConfigReloader* owner;
  };

  void Start(Batch batch);
  void OnLoaded(config::LoadResult loaded);

  event::Dispatcher& dispatcher_;
  Load load_;
  Apply apply_;
  std::thread loader_;
  Batch running_;
  bool queued_ = false;  // a load must follow the running one
  Batch next_;
  std::shared_ptr<Link> link_;
  uint64_t loads_started_ = 0;
};

}  // namespace confgate::server
