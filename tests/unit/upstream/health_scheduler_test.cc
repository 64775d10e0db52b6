#include "confgate/upstream/health_scheduler.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <map>
#include <memory>

#include "gtest/gtest.h"
#include "unit/upstream/fake_timers.h"

namespace confgate::upstream {
namespace {

HostSharedPtr MakeHost(const std::string& address, HostStateSharedPtr state = nullptr) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  return std::make_shared<Host>("cs", address, reinterpret_cast<sockaddr*>(&addr), sizeof(addr), 1,
                                false, std::move(state));
}

config::HealthCheckConfig Check() {
  config::HealthCheckConfig check;
  check.interval = absl::Seconds(2);
  check.timeout = absl::Seconds(1);
  check.healthy_threshold = 2;
  check.unhealthy_threshold = 2;
  return check;
}

struct FakeProbe : event::DeferredDeletable {};

class HealthCheckSchedulerTest : public ::testing::Test {
 protected:
  HealthCheckScheduler::ProbeFactory Probes() {
    return [this](Host& host, const config::HealthCheckConfig&,
                  std::shared_ptr<const network::ClientTls>, HealthCheckScheduler::ProbeDone done) {
      ++probes_started_[host.address()];
      pending_[host.address()] = std::move(done);
      return std::make_unique<FakeProbe>();
    };
  }
  // The probe of `address` in flight answers.
  void Answer(const std::string& address, CheckResult result) {
    HealthCheckScheduler::ProbeDone done = std::move(pending_.at(address));
    pending_.erase(address);
    done(result, result == CheckResult::kPass ? 200 : 0);
    dispatcher_.RunReady();  // the finished probe is deleted
  }
  std::vector<HealthCheckScheduler::Target> Targets(const std::vector<HostSharedPtr>& hosts) {
    std::vector<HealthCheckScheduler::Target> targets;
    for (const HostSharedPtr& host : hosts) {
      targets.push_back({host, Check(), nullptr});
    }
    return targets;
  }

  event::Dispatcher dispatcher_;
  SimulatedTimeSource time_;
  testing::FakeTimers timers_{time_};
  std::map<std::string, int> probes_started_;
  std::map<std::string, HealthCheckScheduler::ProbeDone> pending_;
  std::vector<std::pair<std::string, ActiveHealthTracker::Transition>> transitions_;
  // 0.5: no jitter, so the next check is exactly one interval away.
  HealthCheckScheduler scheduler_{
      dispatcher_, timers_.Factory(), Probes(), [] { return 0.5; },
      [this](const Host& host, CheckResult, int, ActiveHealthTracker::Transition transition) {
        transitions_.emplace_back(host.address(), transition);
      }};
};

TEST_F(HealthCheckSchedulerTest, WarmsOnceEveryCheckedHostHasAFirstResult) {
  HostSharedPtr a = MakeHost("10.0.0.1:80");
  HostSharedPtr b = MakeHost("10.0.0.2:80");
  scheduler_.SetTargets(Targets({a, b}));
  bool warm = false;
  scheduler_.Start([&] { warm = true; });
  timers_.RunDue();
  ASSERT_EQ(pending_.size(), 2u);
  Answer("10.0.0.1:80", CheckResult::kPass);
  EXPECT_FALSE(warm);
  Answer("10.0.0.2:80", CheckResult::kConnectFailure);
  EXPECT_TRUE(warm);
  EXPECT_EQ(scheduler_.state(a->id()), ActiveState::kHealthy);
  EXPECT_EQ(scheduler_.state(b->id()), ActiveState::kUnhealthy);
  EXPECT_EQ(a->state().health_checks()[static_cast<size_t>(CheckResult::kPass)], 1u);
  ASSERT_EQ(transitions_.size(), 2u);
  EXPECT_EQ(transitions_[1].second, ActiveHealthTracker::Transition::kBecameUnhealthy);
}

TEST_F(HealthCheckSchedulerTest, AHangingProbeDelaysWarmUpByOneIntervalPlusTimeoutAtMost) {
  scheduler_.SetTargets(Targets({MakeHost("10.0.0.1:80")}));
  bool warm = false;
  scheduler_.Start([&] { warm = true; });
  timers_.Advance(absl::Seconds(3) - absl::Nanoseconds(1));
  EXPECT_FALSE(warm);
  timers_.Advance(absl::Nanoseconds(1));
  EXPECT_TRUE(warm);
}

TEST_F(HealthCheckSchedulerTest, ChecksEveryIntervalAndTwiceAsOftenWhileAStateChanges) {
  HostSharedPtr host = MakeHost("10.0.0.1:80");
  scheduler_.SetTargets(Targets({host}));
  scheduler_.Start([] {});
  timers_.RunDue();
  Answer("10.0.0.1:80", CheckResult::kPass);
  timers_.Advance(absl::Seconds(2) - absl::Nanoseconds(1));
  EXPECT_EQ(probes_started_["10.0.0.1:80"], 1);
  timers_.Advance(absl::Nanoseconds(1));
  EXPECT_EQ(probes_started_["10.0.0.1:80"], 2);
  Answer("10.0.0.1:80", CheckResult::kTimeout);  // one failure of two: changing
  EXPECT_EQ(scheduler_.state(host->id()), ActiveState::kHealthy);
  timers_.Advance(absl::Seconds(1));
  EXPECT_EQ(probes_started_["10.0.0.1:80"], 3);
  Answer("10.0.0.1:80", CheckResult::kTimeout);
  EXPECT_EQ(scheduler_.state(host->id()), ActiveState::kUnhealthy);
}

TEST_F(HealthCheckSchedulerTest, AReloadKeepsAKeptHostsStateAndChecksNewHostsAtOnce) {
  HostSharedPtr host = MakeHost("10.0.0.1:80");
  scheduler_.SetTargets(Targets({host}));
  scheduler_.Start([] {});
  timers_.RunDue();
  Answer("10.0.0.1:80", CheckResult::kConnectFailure);
  ASSERT_EQ(scheduler_.state(host->id()), ActiveState::kUnhealthy);

  HostSharedPtr reweighted = MakeHost("10.0.0.1:80", host->shared_state());
  HostSharedPtr added = MakeHost("10.0.0.2:80");
  scheduler_.SetTargets(Targets({reweighted, added}));
  EXPECT_EQ(scheduler_.state(reweighted->id()), ActiveState::kUnhealthy);
  EXPECT_EQ(scheduler_.state(added->id()), ActiveState::kUnknown);
  timers_.RunDue();
  EXPECT_EQ(probes_started_["10.0.0.2:80"], 1);
  EXPECT_EQ(probes_started_["10.0.0.1:80"], 1);  // its next check keeps its own schedule

  // Removed, and checks off: no more probes, no state.
  scheduler_.SetTargets({{added, std::nullopt, nullptr}});
  EXPECT_EQ(scheduler_.state(added->id()), std::nullopt);
  EXPECT_EQ(scheduler_.state(reweighted->id()), std::nullopt);
  pending_.clear();
  timers_.Advance(absl::Seconds(10));
  EXPECT_TRUE(pending_.empty());
}

}  // namespace
}  // namespace confgate::upstream
