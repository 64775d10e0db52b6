#include "confgate/upstream/outlier_detector.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstddef>
#include <memory>

#include "gtest/gtest.h"
#include "unit/upstream/fake_timers.h"

namespace confgate::upstream {
namespace {

sockaddr_in Loopback() {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

HostSharedPtr MakeHost(const std::string& address) {
  sockaddr_in addr = Loopback();
  return std::make_shared<Host>("cs", address, reinterpret_cast<sockaddr*>(&addr), sizeof(addr), 1,
                                false);
}

// Stands in for the control plane: availability is "not ejected and not drained" unless the
// host is in its trial, and active checks say what `down` says.
class Wiring : public OutlierDetector::Listener {
 public:
  void PublishAvailability(const Host& host) override {
    if (!detector->in_trial(host.id())) {
      host.state().SetAvailable(!detector->ejected(host.id()) && !host.state().drained(),
                                MonotonicTime{});
    }
  }
  void OnEjectionChanged(const Host& host) override {
    PublishAvailability(host);
    ++changes;
  }
  bool HealthDown(const Host&) override { return down; }

  OutlierDetector* detector = nullptr;
  bool down = false;
  int changes = 0;
};

config::OutlierDetectionConfig Config() {
  config::OutlierDetectionConfig config;
  config.consecutive_gateway_failures = 3;
  config.base_ejection_time = absl::Seconds(30);
  config.max_ejection_percent = 50;
  return config;
}

class OutlierDetectorTest : public ::testing::Test {
 protected:
  OutlierDetectorTest() { wiring_.detector = &detector_; }

  void SetHosts(std::vector<HostSharedPtr> hosts) {
    std::vector<OutlierDetector::Pool> pools;
    pools.push_back({"cs", Config(), std::move(hosts)});
    detector_.SetPools(std::move(pools));
  }
  // What a worker does for an attempt, and what the post to the main thread does.
  void Attempt(Host& host, Outcome outcome) {
    if (OutlierDetector::Observe(host.state(), outcome)) {
      detector_.OnOutcome(host.id(), outcome);
    }
  }
  void Eject(Host& host) {
    for (int i = 0; i < 3; ++i) {
      Attempt(host, Outcome::kGatewayFailure);
    }
    ASSERT_TRUE(detector_.ejected(host.id()));
  }

  SimulatedTimeSource time_;
  testing::FakeTimers timers_{time_};
  Wiring wiring_;
  // 0.5: no jitter, so cooldowns are exact.
  OutlierDetector detector_{timers_.Factory(), time_, [] { return 0.5; }, wiring_};
  std::vector<HostSharedPtr> hosts_{MakeHost("10.0.0.1:80"), MakeHost("10.0.0.2:80"),
                                    MakeHost("10.0.0.3:80")};
};

TEST_F(OutlierDetectorTest, EjectsOnTheThresholdThenTrialsOneRequestAfterTheCooldown) {
  SetHosts(hosts_);
  Host& host = *hosts_[0];
  Attempt(host, Outcome::kGatewayFailure);
  Attempt(host, Outcome::kGatewayFailure);
  EXPECT_FALSE(detector_.ejected(host.id()));
  Attempt(host, Outcome::kGatewayFailure);
  EXPECT_TRUE(detector_.ejected(host.id()));
  EXPECT_TRUE(host.state().ejected());
  EXPECT_FALSE(host.state().available());
  EXPECT_EQ(detector_.ejection_count(host.id()), 1u);

  timers_.Advance(absl::Seconds(30) - absl::Nanoseconds(1));
  EXPECT_FALSE(detector_.in_trial(host.id()));
  timers_.Advance(absl::Nanoseconds(1));
  EXPECT_TRUE(detector_.in_trial(host.id()));
  EXPECT_TRUE(host.state().available());
  ASSERT_TRUE(host.state().ClaimTrial());
  EXPECT_FALSE(host.state().available());  // one trial only
  Attempt(host, Outcome::kSuccess);
  EXPECT_FALSE(detector_.ejected(host.id()));
  EXPECT_FALSE(detector_.in_trial(host.id()));
  EXPECT_TRUE(host.state().available());
  EXPECT_FALSE(host.state().ejected());
}

TEST_F(OutlierDetectorTest, AFailedTrialEjectsAgainWithALongerCooldown) {
  SetHosts(hosts_);
  Host& host = *hosts_[0];
  Eject(host);
  timers_.Advance(absl::Seconds(30));
  ASSERT_TRUE(host.state().ClaimTrial());
  Attempt(host, Outcome::kGatewayFailure);
  EXPECT_TRUE(detector_.ejected(host.id()));
  EXPECT_EQ(detector_.ejection_count(host.id()), 2u);
  EXPECT_EQ(host.state().ejections()[static_cast<size_t>(EjectionReason::kTrialFailed)], 1u);
  timers_.Advance(absl::Seconds(60) - absl::Nanoseconds(1));  // 2 * base
  EXPECT_FALSE(detector_.in_trial(host.id()));
  timers_.Advance(absl::Nanoseconds(1));
  EXPECT_TRUE(detector_.in_trial(host.id()));
}

TEST_F(OutlierDetectorTest, ANeutralTrialOpensTheTrialAgain) {
  SetHosts(hosts_);
  Host& host = *hosts_[0];
  Eject(host);
  timers_.Advance(absl::Seconds(30));
  ASSERT_TRUE(host.state().ClaimTrial());
  Attempt(host, Outcome::kNeutral);
  EXPECT_TRUE(detector_.in_trial(host.id()));
  EXPECT_TRUE(host.state().trial_open());
  EXPECT_TRUE(detector_.ejected(host.id()));
}

TEST_F(OutlierDetectorTest, TheEjectionCapKeepsHostsInThePool) {
  SetHosts({hosts_[0], hosts_[1]});  // 50% of two hosts is one
  Eject(*hosts_[0]);
  for (int i = 0; i < 3; ++i) {
    Attempt(*hosts_[1], Outcome::kGatewayFailure);
  }
  EXPECT_FALSE(detector_.ejected(hosts_[1]->id()));
  EXPECT_EQ(hosts_[1]->state().consecutive_gateway_failures(), 0u);  // counted afresh
}

TEST_F(OutlierDetectorTest, AHostThatChecksHoldDownIsReadmittedWithoutATrial) {
  SetHosts(hosts_);
  Eject(*hosts_[0]);
  wiring_.down = true;
  timers_.Advance(absl::Seconds(30));
  EXPECT_FALSE(detector_.in_trial(hosts_[0]->id()));
  EXPECT_FALSE(detector_.ejected(hosts_[0]->id()));
  EXPECT_FALSE(hosts_[0]->state().trial_open());
}

TEST_F(OutlierDetectorTest, AHealthCheckPassEndsAWaitingTrial) {
  SetHosts(hosts_);
  Eject(*hosts_[0]);
  timers_.Advance(absl::Seconds(30));
  detector_.OnHealthPass(hosts_[0]->id());
  EXPECT_FALSE(detector_.in_trial(hosts_[0]->id()));
  EXPECT_FALSE(detector_.ejected(hosts_[0]->id()));
}

TEST_F(OutlierDetectorTest, AReloadKeepsTheCooldownOfAKeptHost) {
  SetHosts(hosts_);
  Eject(*hosts_[0]);
  timers_.Advance(absl::Seconds(10));
  // Re-weighted: a new Host over the same state.
  sockaddr_in addr = Loopback();
  auto reweighted = std::make_shared<Host>("cs", "10.0.0.1:80", reinterpret_cast<sockaddr*>(&addr),
                                           sizeof(addr), 7, false, hosts_[0]->shared_state());
  SetHosts({reweighted, hosts_[1], hosts_[2]});
  EXPECT_TRUE(detector_.ejected(reweighted->id()));
  timers_.Advance(absl::Seconds(20));
  EXPECT_TRUE(detector_.in_trial(reweighted->id()));
}

// Hands every allocation the same storage, so the next object lands where the last one was.
template <typename T>
struct SameStorage {
  using value_type = T;
  explicit SameStorage(std::byte* storage) : storage(storage) {}
  template <typename U>
  SameStorage(const SameStorage<U>& other) : storage(other.storage) {}  // NOLINT
  T* allocate(size_t) { return reinterpret_cast<T*>(storage); }
  void deallocate(T*, size_t) {}
  template <typename U>
  bool operator==(const SameStorage<U>& other) const {
    return storage == other.storage;
  }
  std::byte* storage;
};

TEST_F(OutlierDetectorTest, ALateReportForARemovedHostNeverReachesTheHostAllocatedInItsPlace) {
  alignas(std::max_align_t) static std::byte host_storage[1024];
  alignas(std::max_align_t) static std::byte state_storage[1024];
  sockaddr_in addr = Loopback();
  auto make = [&] {
    auto state = std::allocate_shared<HostState>(SameStorage<HostState>(state_storage));
    return std::allocate_shared<Host>(SameStorage<Host>(host_storage), "cs", "10.0.0.9:80",
                                      reinterpret_cast<sockaddr*>(&addr), sizeof(addr), 1, false,
                                      std::move(state));
  };
  HostSharedPtr removed = make();
  SetHosts({removed, hosts_[1], hosts_[2]});
  HostId stale = removed->id();
  const Host* where = removed.get();
  SetHosts({hosts_[1], hosts_[2]});  // a reload removes it...
  removed.reset();
  HostSharedPtr successor = make();  // ...and a later one adds the address back
  ASSERT_EQ(successor.get(), where);
  SetHosts({hosts_[1], hosts_[2], successor});
  Eject(*successor);
  timers_.Advance(absl::Seconds(30));
  ASSERT_TRUE(successor->state().ClaimTrial());

  // A worker's failure report for the removed host arrives only now.
  detector_.OnOutcome(stale, Outcome::kGatewayFailure);
  EXPECT_TRUE(detector_.in_trial(successor->id()));  // its own trial is still running
  EXPECT_TRUE(successor->state().trial_in_flight());
  EXPECT_EQ(successor->state().ejections()[static_cast<size_t>(EjectionReason::kTrialFailed)], 0u);
  SetHosts({hosts_[1], hosts_[2]});
}

}  // namespace
}  // namespace confgate::upstream
