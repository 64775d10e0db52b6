#include "confgate/upstream/health.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "confgate/upstream/host.h"
#include "confgate/upstream/outlier.h"
#include "gtest/gtest.h"

namespace confgate::upstream {
namespace {

using Transition = ActiveHealthTracker::Transition;

config::HealthCheckConfig CheckConfig() {
  config::HealthCheckConfig config;
  config.interval = absl::Seconds(2);
  config.jitter_fraction = 0.1;
  config.healthy_threshold = 2;
  config.unhealthy_threshold = 3;
  return config;
}

TEST(ActiveHealthTracker, FirstResultDecides) {
  config::HealthCheckConfig config = CheckConfig();
  ActiveHealthTracker up(config);
  EXPECT_EQ(up.state(), ActiveState::kUnknown);
  EXPECT_EQ(up.Record(true), Transition::kBecameHealthy);
  ActiveHealthTracker down(config);
  EXPECT_EQ(down.Record(false), Transition::kBecameUnhealthy);
}

TEST(ActiveHealthTracker, ThresholdsInBothDirectionsWithResets) {
  config::HealthCheckConfig config = CheckConfig();
  ActiveHealthTracker tracker(config);
  tracker.Record(true);
  EXPECT_EQ(tracker.Record(false), Transition::kNone);
  EXPECT_EQ(tracker.Record(false), Transition::kNone);
  EXPECT_TRUE(tracker.changing());
  EXPECT_EQ(tracker.Record(true), Transition::kNone);  // resets the run
  EXPECT_FALSE(tracker.changing());
  EXPECT_EQ(tracker.Record(false), Transition::kNone);
  EXPECT_EQ(tracker.Record(false), Transition::kNone);
  EXPECT_EQ(tracker.Record(false), Transition::kBecameUnhealthy);  // 3 in a row
  EXPECT_EQ(tracker.state(), ActiveState::kUnhealthy);
  EXPECT_EQ(tracker.Record(true), Transition::kNone);
  EXPECT_EQ(tracker.Record(false), Transition::kNone);  // resets
  EXPECT_EQ(tracker.Record(true), Transition::kNone);
  EXPECT_EQ(tracker.Record(true), Transition::kBecameHealthy);  // 2 in a row
}

TEST(ActiveHealthTracker, JitterBoundsAndFasterWhileChanging) {
  config::HealthCheckConfig config = CheckConfig();
  ActiveHealthTracker tracker(config);
  tracker.Record(true);
  EXPECT_EQ(tracker.NextDelay(0.0), absl::Milliseconds(1800));
  EXPECT_EQ(tracker.NextDelay(0.5), absl::Seconds(2));
  EXPECT_LT(tracker.NextDelay(0.999999), absl::Milliseconds(2200));
  for (double unit = 0; unit < 1; unit += 0.01) {
    EXPECT_GE(tracker.NextDelay(unit), absl::Milliseconds(1800));
    EXPECT_LE(tracker.NextDelay(unit), absl::Milliseconds(2200));
  }
  tracker.Record(false);
  EXPECT_EQ(tracker.NextDelay(0.5), absl::Seconds(1));
}

config::OutlierDetectionConfig OutlierConfig() {
  config::OutlierDetectionConfig config;
  config.consecutive_5xx = 5;
  config.consecutive_gateway_failures = 3;
  config.base_ejection_time = absl::Seconds(30);
  config.max_ejection_time = absl::Seconds(300);
  config.max_ejection_percent = 50;
  config.min_available_hosts = 1;
  return config;
}

TEST(OutlierPolicy, EjectionLengthsGrowToTheCap) {
  config::OutlierDetectionConfig config = OutlierConfig();
  OutlierPolicy policy(config);
  for (uint32_t n = 1; n <= 12; ++n) {
    absl::Duration expected = std::min(absl::Seconds(30) * n, absl::Seconds(300));
    EXPECT_EQ(policy.EjectionTime(n, 0.5), expected) << n;
    EXPECT_EQ(policy.EjectionTime(n, 0.0), expected * 0.9) << n;
    EXPECT_LT(policy.EjectionTime(n, 0.9999), expected * 1.1) << n;
  }
}

TEST(OutlierPolicy, EjectionCountDecaysWhileAdmitted) {
  config::OutlierDetectionConfig config = OutlierConfig();
  OutlierPolicy policy(config);
  SimulatedTimeSource time;
  EjectionRecord record;
  EXPECT_EQ(policy.Eject(record, time.Monotonic(), 0.5), absl::Seconds(30));
  policy.Readmit(record, time.Monotonic());
  EXPECT_EQ(policy.Eject(record, time.Monotonic(), 0.5), absl::Seconds(60));
  policy.Readmit(record, time.Monotonic());
  EXPECT_EQ(policy.Eject(record, time.Monotonic(), 0.5), absl::Seconds(90));
  policy.Readmit(record, time.Monotonic());
  time.Advance(absl::Seconds(65));  // two full periods healthy: n 3 -> 1
  EXPECT_EQ(policy.Eject(record, time.Monotonic(), 0.5), absl::Seconds(60));
  policy.Readmit(record, time.Monotonic());
  time.Advance(absl::Hours(1));  // decays to zero, never below
  EXPECT_EQ(policy.Eject(record, time.Monotonic(), 0.5), absl::Seconds(30));
}

TEST(OutlierPolicy, CapsOnSmallAndLargePools) {
  config::OutlierDetectionConfig config = OutlierConfig();
  OutlierPolicy policy(config);
  // 1 host: min_available_hosts keeps it.
  EXPECT_FALSE(policy.MayEject({1, 1, 0}));
  // 2 hosts: one may go (50%), not the second.
  EXPECT_TRUE(policy.MayEject({2, 2, 0}));
  EXPECT_FALSE(policy.MayEject({2, 1, 1}));
  // 3 hosts: 50% allows one (two would be 67%).
  EXPECT_TRUE(policy.MayEject({3, 3, 0}));
  EXPECT_FALSE(policy.MayEject({3, 2, 1}));
  // 10 hosts: five.
  EXPECT_TRUE(policy.MayEject({10, 6, 4}));
  EXPECT_FALSE(policy.MayEject({10, 5, 5}));
  // The floor holds even when the percentage would allow more.
  config.max_ejection_percent = 100;
  config.min_available_hosts = 2;
  OutlierPolicy floor(config);
  EXPECT_TRUE(floor.MayEject({3, 3, 0}));
  EXPECT_FALSE(floor.MayEject({3, 2, 1}));
  // Hosts down for other reasons count against the floor.
  EXPECT_FALSE(floor.MayEject({10, 2, 0}));
}

HostSharedPtr MakeHost() {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  return std::make_shared<Host>("u", "10.0.0.1:80", reinterpret_cast<sockaddr*>(&addr),
                                sizeof(addr), 1, false);
}

TEST(HostOutcomes, ConsecutiveCountersAndThresholds) {
  config::OutlierDetectionConfig config = OutlierConfig();
  HostSharedPtr host = MakeHost();
  EXPECT_FALSE(host->state().RecordOutcome(Outcome::kGatewayFailure, config));
  EXPECT_FALSE(host->state().RecordOutcome(Outcome::kGatewayFailure, config));
  EXPECT_FALSE(host->state().RecordOutcome(Outcome::kSuccess, config));  // resets both
  EXPECT_FALSE(host->state().RecordOutcome(Outcome::kGatewayFailure, config));
  EXPECT_FALSE(
      host->state().RecordOutcome(Outcome::kNeutral, config));  // a watch timeout: no reset
  EXPECT_FALSE(host->state().RecordOutcome(Outcome::kGatewayFailure, config));
  EXPECT_TRUE(host->state().RecordOutcome(Outcome::kGatewayFailure, config));  // 3 gateway failures
  host->state().ResetFailureCounts();
  for (int i = 0; i < 4; ++i) {
    EXPECT_FALSE(host->state().RecordOutcome(Outcome::kServerError, config));
  }
  EXPECT_TRUE(host->state().RecordOutcome(Outcome::kServerError, config));  // 5 x 5xx
  EXPECT_EQ(host->state().consecutive_gateway_failures(), 0u);
}

TEST(HostOutcomes, HalfOpenAdmitsExactlyOneTrial) {
  HostSharedPtr host = MakeHost();
  host->state().SetAvailable(false, MonotonicTime{});
  host->state().OpenTrial();
  EXPECT_TRUE(host->state().available());
  EXPECT_TRUE(host->state().trial_open());
  EXPECT_TRUE(host->state().ClaimTrial());
  EXPECT_FALSE(host->state().ClaimTrial());  // a second worker loses
  EXPECT_FALSE(host->state().available());   // no other request until the trial's outcome
  EXPECT_TRUE(host->state().trial_in_flight());
  EXPECT_TRUE(host->state().TakeTrialInFlight());
  EXPECT_FALSE(host->state().TakeTrialInFlight());
}

}  // namespace
}  // namespace confgate::upstream
