#include "confgate/config/reloader.h"

#include <future>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace confgate::config {
namespace {

// A load that waits until the test (or the main loop) lets it finish.
class Gate {
 public:
  void Open() { opened_.set_value(); }
  // False when nobody opened it within 10 s (the test then fails instead of hanging).
  bool Wait() { return ready_.wait_for(std::chrono::seconds(10)) == std::future_status::ready; }

 private:
  std::promise<void> opened_;
  std::shared_future<void> ready_ = opened_.get_future().share();
};

LoadResult Failed(const std::string& message) {
  LoadResult result;
  result.errors.push_back(ConfigError{"", 0, message});
  return result;
}

TEST(ConfigReloader, LoadsOnItsOwnThreadAndAppliesOnTheMainThread) {
  event::Dispatcher dispatcher;
  std::thread::id main = std::this_thread::get_id();
  std::thread::id loaded_on;
  std::thread::id applied_on;
  ConfigReloader reloader(
      dispatcher,
      [&] {
        loaded_on = std::this_thread::get_id();
        return Failed("bad file");
      },
      [&](LoadResult loaded, ReloadTrigger trigger) {
        applied_on = std::this_thread::get_id();
        EXPECT_EQ(trigger, ReloadTrigger::kSignal);
        return absl::InvalidArgumentError(loaded.errors[0].message);
      });
  absl::Status result;
  reloader.Reload(ReloadTrigger::kSignal, [&](absl::Status status) {
    result = status;
    dispatcher.Exit();
  });
  EXPECT_TRUE(reloader.loading());
  dispatcher.Run();
  EXPECT_NE(loaded_on, main);
  EXPECT_EQ(applied_on, main);
  EXPECT_EQ(result.message(), "bad file");
  EXPECT_FALSE(reloader.loading());
}

// The admin listener, health checks and timers keep running while a large file is parsed.
TEST(ConfigReloader, TheMainLoopRunsWhileALoadRuns) {
  event::Dispatcher dispatcher;
  Gate gate;
  bool opened_by_the_loop = false;
  ConfigReloader reloader(
      dispatcher,
      [&] {
        opened_by_the_loop = gate.Wait();
        return LoadResult{};
      },
      [](LoadResult, ReloadTrigger) { return absl::OkStatus(); });
  reloader.Reload(ReloadTrigger::kAdmin, [&](absl::Status) { dispatcher.Exit(); });
  // Runs only if the loop is not blocked by the load.
  event::TimerPtr timer = dispatcher.CreateTimer([&] { gate.Open(); });
  timer->Enable(absl::ZeroDuration());
  dispatcher.Run();
  EXPECT_TRUE(opened_by_the_loop);
}

TEST(ConfigReloader, TriggersDuringALoadAreFoldedIntoOneMoreLoad) {
  event::Dispatcher dispatcher;
  Gate first;
  int loads = 0;
  std::vector<ReloadTrigger> applied;
  ConfigReloader reloader(
      dispatcher,
      [&] {
        if (++loads == 1) {
          first.Wait();
        }
        return Failed(absl::StrCat("load ", loads));
      },
      [&](LoadResult loaded, ReloadTrigger trigger) {
        applied.push_back(trigger);
        return absl::InvalidArgumentError(loaded.errors[0].message);
      });
  std::vector<std::string> results(4);
  int answered = 0;
  auto done = [&](size_t i) {
    return [&, i](absl::Status status) {
      results[i] = std::string(status.message());
      if (++answered == 4) {
        dispatcher.Exit();
      }
    };
  };
  reloader.Reload(ReloadTrigger::kSignal, done(0));
  // Fifty signals and two admin calls while the first load runs: one more load.
  for (int i = 0; i < 50; ++i) {
    reloader.Reload(i == 0 ? ReloadTrigger::kFileWatch : ReloadTrigger::kSignal);
  }
  reloader.Reload(ReloadTrigger::kAdmin, done(1));
  reloader.Reload(ReloadTrigger::kAdmin, done(2));
  reloader.Reload(ReloadTrigger::kSignal, done(3));
  first.Open();
  dispatcher.Run();
  EXPECT_EQ(reloader.loads_started(), 2u);
  EXPECT_EQ(applied,
            (std::vector<ReloadTrigger>{ReloadTrigger::kSignal, ReloadTrigger::kFileWatch}));
  // The first caller gets the first load; the others the load that started after them.
  EXPECT_EQ(results, (std::vector<std::string>{"load 1", "load 2", "load 2", "load 2"}));
}

TEST(ConfigReloader, DestroyedDuringALoadCallsNothing) {
  event::Dispatcher dispatcher;
  Gate gate;
  bool applied = false;
  bool answered = false;
  {
    ConfigReloader reloader(
        dispatcher,
        [&] {
          gate.Wait();
          return LoadResult{};
        },
        [&](LoadResult, ReloadTrigger) {
          applied = true;
          return absl::OkStatus();
        });
    reloader.Reload(ReloadTrigger::kAdmin, [&](absl::Status) { answered = true; });
    gate.Open();
  }  // waits for the loader; its result is still queued in the dispatcher
  dispatcher.RunReady();
  EXPECT_FALSE(applied);
  EXPECT_FALSE(answered);
}

TEST(ReloadTrigger, LogNamesStayAsTheyWere) {
  EXPECT_STREQ(ReloadTriggerName(ReloadTrigger::kSignal), "SIGHUP");
  EXPECT_STREQ(ReloadTriggerName(ReloadTrigger::kFileWatch), "file change");
  EXPECT_STREQ(ReloadTriggerName(ReloadTrigger::kAdmin), "admin");
  EXPECT_STREQ(ReloadTriggerName(ReloadTrigger::kDnsRefresh), "dns");
}

}  // namespace
}  // namespace confgate::config
