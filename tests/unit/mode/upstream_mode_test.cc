#include "confgate/mode/upstream_mode.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "gtest/gtest.h"
#include "unit/upstream/fake_timers.h"

namespace confgate::mode {
namespace {

upstream::ClusterSharedPtr MakeCluster(absl::Duration read_only_after) {
  config::UpstreamConfig config;
  config.name = "cs";
  config.read_only_after = read_only_after;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  auto host = std::make_shared<upstream::Host>(
      "cs", "10.0.0.1:80", reinterpret_cast<sockaddr*>(&addr), sizeof(addr), 1, false);
  return std::make_shared<const upstream::Cluster>(config,
                                                   std::vector<upstream::HostSharedPtr>{host});
}

class UpstreamModeTrackerTest : public ::testing::Test {
 protected:
  SimulatedTimeSource time_;
  testing::FakeTimers timers_{time_};
  upstream::TimerFactory factory_ = timers_.Factory();
};

TEST_F(UpstreamModeTrackerTest, ReadOnlyComesFromTheTimerOnceTheDwellIsOver) {
  upstream::ClusterSharedPtr cluster = MakeCluster(absl::Seconds(3));
  UpstreamModeTracker tracker(factory_, time_);
  tracker.SetCluster(cluster);
  cluster->hosts()[0]->state().SetAvailable(false, time_.Monotonic());
  tracker.Update("host down");
  EXPECT_EQ(tracker.mode(), UpstreamMode::kNormal);  // requests still go to the hosts
  timers_.Advance(absl::Seconds(3) - absl::Nanoseconds(1));
  EXPECT_EQ(tracker.mode(), UpstreamMode::kNormal);
  timers_.Advance(absl::Nanoseconds(1));
  EXPECT_EQ(tracker.mode(), UpstreamMode::kReadOnly);
  EXPECT_EQ(cluster->mode().load(), static_cast<int>(UpstreamMode::kReadOnly));

  cluster->hosts()[0]->state().SetAvailable(true, time_.Monotonic());
  tracker.Update("host up");
  EXPECT_EQ(tracker.mode(), UpstreamMode::kNormal);
  EXPECT_EQ(cluster->mode().load(), static_cast<int>(UpstreamMode::kNormal));
}

TEST_F(UpstreamModeTrackerTest, TheOverrideAndTheModeSurviveANewCluster) {
  UpstreamModeTracker tracker(factory_, time_);
  tracker.SetCluster(MakeCluster(absl::Seconds(3)));
  tracker.SetOverride(true);
  EXPECT_EQ(tracker.mode(), UpstreamMode::kReadOnly);
  upstream::ClusterSharedPtr reloaded = MakeCluster(absl::Seconds(3));
  tracker.SetCluster(reloaded);
  tracker.Publish();
  EXPECT_EQ(reloaded->mode().load(), static_cast<int>(UpstreamMode::kReadOnly));
  tracker.Update("configuration reloaded");
  EXPECT_EQ(tracker.mode(), UpstreamMode::kReadOnly);
  tracker.SetOverride(std::nullopt);
  EXPECT_EQ(tracker.mode(), UpstreamMode::kNormal);
}

}  // namespace
}  // namespace confgate::mode
