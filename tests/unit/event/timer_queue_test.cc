#include "confgate/event/timer_queue.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace confgate::event {
namespace {

class TimerQueueTest : public testing::Test {
 protected:
  std::unique_ptr<QueuedTimer> MakeTimer(std::string name) {
    return std::make_unique<QueuedTimer>(queue_, [this, name] { fired_.push_back(name); });
  }
  void Advance(absl::Duration d) {
    time_.Advance(d);
    queue_.RunExpired();
  }

  Dispatcher dispatcher_;
  SimulatedTimeSource time_;
  TimerQueue queue_{dispatcher_, time_};
  std::vector<std::string> fired_;
};

TEST_F(TimerQueueTest, FiresOnceAtItsDeadline) {
  auto timer = MakeTimer("a");
  timer->Enable(absl::Seconds(5));
  EXPECT_TRUE(timer->enabled());
  Advance(absl::Seconds(4));
  EXPECT_TRUE(fired_.empty());
  Advance(absl::Seconds(1));
  EXPECT_EQ(fired_, std::vector<std::string>{"a"});
  EXPECT_FALSE(timer->enabled());
  Advance(absl::Seconds(10));
  EXPECT_EQ(fired_.size(), 1u);
}

TEST_F(TimerQueueTest, EarliestFirstAcrossDurations) {
  auto idle = MakeTimer("idle");
  auto header = MakeTimer("header");
  auto response = MakeTimer("response");
  idle->Enable(absl::Seconds(60));
  header->Enable(absl::Seconds(10));
  time_.Advance(absl::Seconds(1));
  response->Enable(absl::Seconds(30));  // due at 31 s
  Advance(absl::Seconds(9));
  EXPECT_EQ(fired_, std::vector<std::string>{"header"});
  Advance(absl::Seconds(21));
  EXPECT_EQ(fired_, (std::vector<std::string>{"header", "response"}));
  Advance(absl::Seconds(28));  // 59 s
  EXPECT_EQ(fired_.size(), 2u);
  Advance(absl::Seconds(1));
  EXPECT_EQ(fired_, (std::vector<std::string>{"header", "response", "idle"}));
  EXPECT_EQ(queue_.armed(), 0u);
}

TEST_F(TimerQueueTest, ReEnablingMovesTheDeadline) {
  auto timer = MakeTimer("a");
  timer->Enable(absl::Seconds(5));
  time_.Advance(absl::Seconds(4));
  timer->Enable(absl::Seconds(5));  // an idle timer pushed back by a new request
  Advance(absl::Seconds(4));
  EXPECT_TRUE(fired_.empty());
  Advance(absl::Seconds(1));
  EXPECT_EQ(fired_.size(), 1u);
  EXPECT_EQ(queue_.armed(), 0u);
}

TEST_F(TimerQueueTest, DisabledAndDestroyedTimersNeverFire) {
  auto first = MakeTimer("first");
  auto second = MakeTimer("second");
  auto third = MakeTimer("third");
  first->Enable(absl::Seconds(1));
  second->Enable(absl::Seconds(1));
  third->Enable(absl::Seconds(1));
  second->Disable();
  third.reset();
  EXPECT_EQ(queue_.armed(), 1u);
  Advance(absl::Seconds(2));
  EXPECT_EQ(fired_, std::vector<std::string>{"first"});
}

TEST_F(TimerQueueTest, CallbacksMayDestroyOrArmOtherTimers) {
  std::unique_ptr<QueuedTimer> victim = MakeTimer("victim");
  std::unique_ptr<QueuedTimer> rearmed;
  auto killer = std::make_unique<QueuedTimer>(queue_, [&] {
    fired_.push_back("killer");
    victim.reset();                     // armed for the same moment, right behind
    rearmed->Enable(absl::Seconds(1));  // fires on the next pass, not this one
  });
  rearmed = MakeTimer("rearmed");
  killer->Enable(absl::Seconds(1));
  victim->Enable(absl::Seconds(1));
  Advance(absl::Seconds(1));
  EXPECT_EQ(fired_, std::vector<std::string>{"killer"});
  Advance(absl::Seconds(1));
  EXPECT_EQ(fired_, (std::vector<std::string>{"killer", "rearmed"}));
}

TEST_F(TimerQueueTest, CallbacksMayArmTimersOfNewDurations) {
  // As a request whose connect timed out retries and then waits for its response: the list
  // the callback came from is empty, and a list for a new duration appears while it runs.
  auto idle = MakeTimer("idle");
  auto gone = MakeTimer("gone");
  auto response = MakeTimer("response");
  auto connect = std::make_unique<QueuedTimer>(queue_, [&] {
    fired_.push_back("connect");
    response->Enable(absl::Milliseconds(100));
  });
  idle->Enable(absl::Hours(1));
  gone->Enable(absl::Seconds(5));
  connect->Enable(absl::Milliseconds(10));
  gone->Disable();  // an empty list between the others
  Advance(absl::Milliseconds(10));
  EXPECT_EQ(fired_, std::vector<std::string>{"connect"});
  Advance(absl::Milliseconds(100));
  EXPECT_EQ(fired_, (std::vector<std::string>{"connect", "response"}));
  EXPECT_TRUE(idle->enabled());
}

TEST_F(TimerQueueTest, ManyDurationsOverTime) {
  // Reloads that change timeouts: lists come and go, timers keep their deadlines.
  std::vector<std::unique_ptr<QueuedTimer>> timers;
  for (int i = 0; i < 40; ++i) {
    timers.push_back(MakeTimer("t" + std::to_string(i)));
    timers.back()->Enable(absl::Milliseconds(100 + i));
  }
  Advance(absl::Milliseconds(120));
  EXPECT_EQ(fired_.size(), 21u);  // due at 100 ... 120
  for (int i = 0; i <= 20; ++i) {
    timers[i]->Enable(absl::Milliseconds(300 + i));  // new durations; the old lists are empty
  }
  Advance(absl::Milliseconds(19));
  EXPECT_EQ(fired_.size(), 40u);  // the rest of the first round, due at 121 ... 139
  Advance(absl::Milliseconds(300));
  EXPECT_EQ(fired_.size(), 60u);  // due at 420 ... 439
  Advance(absl::Milliseconds(1));
  EXPECT_EQ(fired_.size(), 61u);
  EXPECT_EQ(queue_.armed(), 0u);
}

TEST_F(TimerQueueTest, ATimerReArmedAfterItsListWasDroppedFiresOnTime) {
  // A timer remembers the list it was last armed in; that list may be dropped while the timer
  // is disarmed (pruning after many durations) and must be found again, never reused.
  auto remembered = MakeTimer("remembered");
  remembered->Enable(absl::Seconds(1));
  remembered->Disable();
  auto churn = MakeTimer("churn");
  for (int i = 0; i < 200; ++i) {
    churn->Enable(absl::Milliseconds(2000 + i));
    churn->Disable();
  }
  remembered->Enable(absl::Seconds(1));
  Advance(absl::Milliseconds(999));
  EXPECT_TRUE(fired_.empty());
  Advance(absl::Milliseconds(1));
  EXPECT_EQ(fired_, std::vector<std::string>{"remembered"});
  // And with another duration after the same one: the new one counts.
  remembered->Enable(absl::Seconds(1));
  remembered->Enable(absl::Seconds(3));
  Advance(absl::Seconds(2));
  EXPECT_EQ(fired_.size(), 1u);
  Advance(absl::Seconds(1));
  EXPECT_EQ(fired_.size(), 2u);
}

TEST_F(TimerQueueTest, CallbackMayDestroyItsOwnTimer) {
  std::unique_ptr<QueuedTimer> self;
  self = std::make_unique<QueuedTimer>(queue_, [&] { self.reset(); });
  self->Enable(absl::Milliseconds(10));
  Advance(absl::Milliseconds(10));
  EXPECT_EQ(self, nullptr);
}

TEST_F(TimerQueueTest, HugeTimeoutsMeanNeverRatherThanOverflow) {
  // The config accepts up to 1e9 of any unit; a deadline past the clock's range must not wrap.
  RealTimeSource real;
  TimerQueue queue(dispatcher_, real);
  int fired = 0;
  QueuedTimer huge(queue, [&] { ++fired; });
  QueuedTimer infinite(queue, [&] { ++fired; });
  huge.Enable(absl::Hours(3000000));
  infinite.Enable(absl::InfiniteDuration());
  queue.RunExpired();
  EXPECT_EQ(fired, 0);
  EXPECT_EQ(queue.armed(), 2u);
}

TEST_F(TimerQueueTest, ZeroAndNegativeTimeoutsFireOnTheNextPass) {
  auto zero = MakeTimer("zero");
  auto negative = MakeTimer("negative");
  zero->Enable(absl::ZeroDuration());
  negative->Enable(absl::Seconds(-3));
  queue_.RunExpired();
  EXPECT_EQ(fired_, (std::vector<std::string>{"zero", "negative"}));
}

TEST(TimerQueueLoop, TheLoopFiresDueTimers) {
  Dispatcher dispatcher;
  RealTimeSource time;
  TimerQueue queue(dispatcher, time);
  int fired = 0;
  QueuedTimer timer(queue, [&] {
    ++fired;
    dispatcher.Exit();
  });
  QueuedTimer later(queue, [&] { ++fired; });
  later.Enable(absl::Hours(1));
  timer.Enable(absl::Milliseconds(5));  // earlier than the wake-up already armed
  dispatcher.Run();
  EXPECT_EQ(fired, 1);
  EXPECT_TRUE(later.enabled());
}

}  // namespace
}  // namespace confgate::event
