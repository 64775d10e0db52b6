#include "confgate/event/dispatcher.h"

#include <atomic>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace confgate::event {
namespace {

TEST(Dispatcher, PostedCallbacksRunOnTheLoopInOrder) {
  Dispatcher dispatcher;
  std::vector<int> ran;
  dispatcher.Post([&] { ran.push_back(1); });
  dispatcher.Post([&] { ran.push_back(2); });
  EXPECT_TRUE(ran.empty());  // never inside Post()
  dispatcher.RunReady();
  EXPECT_EQ(ran, (std::vector<int>{1, 2}));
  dispatcher.RunReady();  // the wake-up was consumed: nothing runs twice
  EXPECT_EQ(ran.size(), 2u);
}

TEST(Dispatcher, PostsFromOtherThreadsWakeARunningLoop) {
  Dispatcher dispatcher;
  constexpr int kThreads = 4;
  constexpr int kPostsEach = 2000;
  int ran = 0;  // touched on the loop's thread only
  std::vector<int> last_seen(kThreads, -1);
  bool in_order = true;
  std::vector<std::thread> posters;
  for (int t = 0; t < kThreads; ++t) {
    posters.emplace_back([&, t] {
      for (int i = 0; i < kPostsEach; ++i) {
        dispatcher.Post([&, t, i] {
          in_order = in_order && last_seen[t] == i - 1;
          last_seen[t] = i;
          if (++ran == kThreads * kPostsEach) {
            dispatcher.Exit();
          }
        });
      }
    });
  }
  // A lost wake-up would leave the loop waiting: the guard ends the test instead of hanging it.
  TimerPtr guard = dispatcher.CreateTimer([&] { dispatcher.Exit(); });
  guard->Enable(absl::Seconds(30));
  dispatcher.Run();
  for (std::thread& poster : posters) {
    poster.join();
  }
  EXPECT_EQ(ran, kThreads * kPostsEach);
  EXPECT_TRUE(in_order);
}

struct CountingWork final : PassWork {
  void RunPassWork() override {
    ++runs;
    if (then) {
      then();
    }
  }
  int runs = 0;
  std::function<void()> then;
};

TEST(Dispatcher, PassWorkRunsOnceAfterTheCurrentCallbacks) {
  Dispatcher dispatcher;
  CountingWork work;
  dispatcher.Schedule(work);
  dispatcher.Schedule(work);  // already scheduled: still one run
  EXPECT_TRUE(work.scheduled());
  EXPECT_EQ(work.runs, 0);
  dispatcher.RunReady();
  EXPECT_EQ(work.runs, 1);
  EXPECT_FALSE(work.scheduled());
  dispatcher.RunReady();
  EXPECT_EQ(work.runs, 1);
}

TEST(Dispatcher, CancelledOrDestroyedPassWorkNeverRuns) {
  Dispatcher dispatcher;
  CountingWork cancelled;
  auto destroyed = std::make_unique<CountingWork>();
  CountingWork kept;
  dispatcher.Schedule(cancelled);
  dispatcher.Schedule(*destroyed);
  dispatcher.Schedule(kept);
  dispatcher.Cancel(cancelled);
  destroyed.reset();
  dispatcher.RunReady();
  EXPECT_EQ(cancelled.runs, 0);
  EXPECT_EQ(kept.runs, 1);
}

TEST(Dispatcher, PassWorkScheduledWhileRunningRunsInTheSamePass) {
  Dispatcher dispatcher;
  CountingWork second;
  auto victim = std::make_unique<CountingWork>();
  CountingWork first;
  first.then = [&] {
    dispatcher.Schedule(second);
    victim.reset();  // scheduled behind `first`: destroyed before its turn
  };
  dispatcher.Schedule(first);
  dispatcher.Schedule(*victim);
  dispatcher.RunReady();
  EXPECT_EQ(first.runs, 1);
  EXPECT_EQ(second.runs, 1);
  EXPECT_EQ(victim, nullptr);
}

// Counts its destruction; may defer another object from its destructor, as a stream that ends
// its connection does.
struct Deferred final : DeferredDeletable {
  Deferred(Dispatcher& dispatcher, std::vector<int>& destroyed, int id, int then_defer)
      : dispatcher(dispatcher), destroyed(destroyed), id(id), then_defer(then_defer) {}
  ~Deferred() override {
    destroyed.push_back(id);
    if (then_defer != 0) {
      dispatcher.DeferredDelete(std::make_unique<Deferred>(dispatcher, destroyed, then_defer, 0));
    }
  }
  Dispatcher& dispatcher;
  std::vector<int>& destroyed;
  int id;
  int then_defer;
};

TEST(Dispatcher, DeferredObjectsDieAfterTheCallbackAndTheirOwnDeferralsToo) {
  Dispatcher dispatcher;
  std::vector<int> destroyed;
  for (int round = 0; round < 3; ++round) {  // the lists are reused from round to round
    destroyed.clear();
    dispatcher.DeferredDelete(std::make_unique<Deferred>(dispatcher, destroyed, 1, 3));
    dispatcher.DeferredDelete(std::make_unique<Deferred>(dispatcher, destroyed, 2, 0));
    EXPECT_TRUE(destroyed.empty());  // never inside DeferredDelete()
    dispatcher.RunReady();
    EXPECT_EQ(destroyed, (std::vector<int>{1, 2, 3})) << "round " << round;
  }
  // Whatever is still deferred when the dispatcher goes is destroyed with it.
  {
    Dispatcher short_lived;
    short_lived.DeferredDelete(std::make_unique<Deferred>(short_lived, destroyed, 4, 5));
  }
  EXPECT_EQ(destroyed, (std::vector<int>{1, 2, 3, 4, 5}));
}

}  // namespace
}  // namespace confgate::event
