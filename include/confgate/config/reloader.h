// Reloads of the upstream file, loaded and validated on a loader thread: yaml-cpp needs
// seconds for a large file, and on the main thread that would stall the admin listener
// (/healthz, /metrics), health checks and DNS. The result comes back to the main thread through
// its dispatcher, where the caller builds it into a runtime snapshot and applies it (building
// belongs to the server, above config).
//
// Triggers that arrive while a load runs are folded into one more load after it: the file may
// have changed since the running load read it. Every trigger's callback gets the result of the
// first load that started after the trigger.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "confgate/config/loader.h"
#include "confgate/event/dispatcher.h"

namespace confgate::config {

// What asked for the configuration to be applied again.
enum class ReloadTrigger : uint8_t {
  kSignal,      // SIGHUP
  kFileWatch,   // a change in the upstream file's directory
  kAdmin,       // POST /reload
  kDnsRefresh,  // new DNS answers: the running config is rebuilt; the file is not read, so
                // this one never goes through ConfigReloader
};

// The trigger as logs name it: "SIGHUP", "file change", "admin", "dns".
const char* ReloadTriggerName(ReloadTrigger trigger);

class ConfigReloader {
 public:
  // Runs on the loader thread: the Load and Validate steps of the pipeline.
  using Load = std::function<LoadResult()>;
  // Runs on the main thread with what Load returned: the Build step and the swap (or why
  // not). Returns the reload's result.
  using Apply = std::function<absl::Status(LoadResult loaded, ReloadTrigger trigger)>;
  using Done = std::function<void(absl::Status)>;

  ConfigReloader(event::Dispatcher& dispatcher, Load load, Apply apply);
  // Waits for a load in flight; callbacks still waiting are dropped, not called.
  ~ConfigReloader();
  ConfigReloader(const ConfigReloader&) = delete;
  ConfigReloader& operator=(const ConfigReloader&) = delete;

  // Main thread. Starts a load, or folds this trigger into the one queued behind the load that
  // runs. `done` (optional) gets the result.
  void Reload(ReloadTrigger trigger, Done done = nullptr);

  bool loading() const { return loader_.joinable(); }
  // How many loads ran, for tests.
  uint64_t loads_started() const { return loads_started_; }

 private:
  struct Batch {
    std::optional<ReloadTrigger> trigger;  // the first trigger names a folded load
    std::vector<Done> waiting;
  };
  // Lets a posted result find its reloader, or see that it is gone (main thread only).
  struct Link {
    ConfigReloader* owner;
  };

  void Start(Batch batch);
  void OnLoaded(LoadResult loaded);

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

}  // namespace confgate::config
