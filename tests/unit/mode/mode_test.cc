#include "confgate/mode/mode.h"

#include "gtest/gtest.h"

namespace confgate::mode {
namespace {

TEST(ComputeMode, FromAvailability) {
  EXPECT_EQ(ComputeMode(true, true, std::nullopt), UpstreamMode::kNormal);
  EXPECT_EQ(ComputeMode(true, false, std::nullopt), UpstreamMode::kNormal);
  EXPECT_EQ(ComputeMode(false, true, std::nullopt), UpstreamMode::kFailover);
  EXPECT_EQ(ComputeMode(false, false, std::nullopt), UpstreamMode::kReadOnly);
}

TEST(ComputeMode, OperatorOverride) {
  EXPECT_EQ(ComputeMode(true, true, true), UpstreamMode::kReadOnly);
  EXPECT_EQ(ComputeMode(false, false, false), UpstreamMode::kNormal);
  EXPECT_EQ(ComputeMode(false, true, false), UpstreamMode::kFailover);
}

TEST(UpstreamModeName, MatchesTheGaugeValues) {
  EXPECT_STREQ(UpstreamModeName(UpstreamMode::kNormal), "normal");
  EXPECT_STREQ(UpstreamModeName(UpstreamMode::kFailover), "failover");
  EXPECT_STREQ(UpstreamModeName(UpstreamMode::kReadOnly), "read_only");
  EXPECT_EQ(static_cast<int>(UpstreamMode::kReadOnly), 2);
}

constexpr HostAvailability kAllDown{false, false, true};
constexpr HostAvailability kPrimaryUp{true, false, true};

TEST(ModeController, ReadOnlyOnlyAfterTheDwell) {
  SimulatedTimeSource time;
  ModeController controller(absl::Seconds(3));
  EXPECT_EQ(controller.Update(kPrimaryUp, std::nullopt, time.Monotonic()), UpstreamMode::kNormal);
  EXPECT_FALSE(controller.recheck_in().has_value());

  // Every host down: the mode stays normal (requests go to the hosts) for read_only_after.
  EXPECT_EQ(controller.Update(kAllDown, std::nullopt, time.Monotonic()), UpstreamMode::kNormal);
  ASSERT_TRUE(controller.recheck_in().has_value());
  EXPECT_EQ(*controller.recheck_in(), absl::Seconds(3));
  time.Advance(absl::Seconds(2));
  EXPECT_EQ(controller.Update(kAllDown, std::nullopt, time.Monotonic()), UpstreamMode::kNormal);
  EXPECT_EQ(*controller.recheck_in(), absl::Seconds(1));
  time.Advance(absl::Seconds(1));
  EXPECT_EQ(controller.Update(kAllDown, std::nullopt, time.Monotonic()), UpstreamMode::kReadOnly);
  EXPECT_FALSE(controller.recheck_in().has_value());

  // A host back ends read-only at once.
  EXPECT_EQ(controller.Update(kPrimaryUp, std::nullopt, time.Monotonic()), UpstreamMode::kNormal);
}

TEST(ModeController, AShortBlipNeverReachesReadOnly) {
  SimulatedTimeSource time;
  ModeController controller(absl::Seconds(3));
  for (int blip = 0; blip < 5; ++blip) {
    EXPECT_EQ(controller.Update(kAllDown, std::nullopt, time.Monotonic()), UpstreamMode::kNormal);
    time.Advance(absl::Seconds(1));
    EXPECT_EQ(controller.Update(kAllDown, std::nullopt, time.Monotonic()), UpstreamMode::kNormal);
    EXPECT_EQ(controller.Update(kPrimaryUp, std::nullopt, time.Monotonic()), UpstreamMode::kNormal);
    time.Advance(absl::Seconds(2));  // the dwell starts over with the next outage
  }
}

TEST(ModeController, FailoverIsKeptDuringTheDwell) {
  SimulatedTimeSource time;
  ModeController controller(absl::Seconds(3));
  EXPECT_EQ(controller.Update({false, true, true}, std::nullopt, time.Monotonic()),
            UpstreamMode::kFailover);
  EXPECT_EQ(controller.Update(kAllDown, std::nullopt, time.Monotonic()), UpstreamMode::kFailover);
  time.Advance(absl::Seconds(3));
  EXPECT_EQ(controller.Update(kAllDown, std::nullopt, time.Monotonic()), UpstreamMode::kReadOnly);
}

TEST(ModeController, ZeroDwellOverridesAndDrainAreImmediate) {
  SimulatedTimeSource time;
  ModeController immediate(absl::ZeroDuration());
  EXPECT_EQ(immediate.Update(kAllDown, std::nullopt, time.Monotonic()), UpstreamMode::kReadOnly);

  ModeController controller(absl::Seconds(3));
  EXPECT_EQ(controller.Update(kPrimaryUp, true, time.Monotonic()), UpstreamMode::kReadOnly);
  // Every host drained by the operator: nothing to route to, read-only at once.
  EXPECT_EQ(controller.Update({false, false, false}, std::nullopt, time.Monotonic()),
            UpstreamMode::kReadOnly);
  // Override false keeps the upstream out of read-only however long the outage.
  time.Advance(absl::Seconds(10));
  EXPECT_EQ(controller.Update(kAllDown, false, time.Monotonic()), UpstreamMode::kNormal);
  // Cleared: the outage has lasted long enough already.
  EXPECT_EQ(controller.Update(kAllDown, std::nullopt, time.Monotonic()), UpstreamMode::kReadOnly);
}

TEST(ModeController, AClearedOverrideDuringTheDwellRoutesAgain) {
  SimulatedTimeSource time;
  ModeController controller(absl::Seconds(3));
  EXPECT_EQ(controller.Update(kAllDown, true, time.Monotonic()), UpstreamMode::kReadOnly);
  time.Advance(absl::Seconds(1));
  EXPECT_EQ(controller.Update(kAllDown, std::nullopt, time.Monotonic()), UpstreamMode::kNormal);
  EXPECT_EQ(*controller.recheck_in(), absl::Seconds(2));
}

}  // namespace
}  // namespace confgate::mode
