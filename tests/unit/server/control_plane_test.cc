#include "server/control_plane.h"

#include "confgate/config/loader.h"
#include "gtest/gtest.h"

namespace confgate::server {
namespace {

RuntimeSnapshotPtr MakeSnapshot(const std::string& servers, const std::string& extra = "") {
  config::LoadResult loaded = config::LoadConfigFromString(
      "listeners: [{address: 127.0.0.1:0}]\n"
      "upstreams:\n"
      "  cs:\n"
      "    servers: " +
          servers + "\n" + extra + "routes: [{match: {prefix: /}, upstream: cs}]\n",
      "test");
  EXPECT_TRUE(loaded.ok()) << (loaded.ok() ? "" : loaded.errors[0].ToString());
  absl::StatusOr<RuntimeSnapshotPtr> snapshot = BuildRuntimeSnapshot(loaded.config);
  EXPECT_TRUE(snapshot.ok());
  return *snapshot;
}

class ControlPlaneTest : public ::testing::Test {
 protected:
  event::Dispatcher dispatcher_;
  SimulatedTimeSource time_;
};

TEST_F(ControlPlaneTest, WarmsAtOnceWithoutHealthChecks) {
  RuntimeSnapshotPtr snapshot = MakeSnapshot("[{address: 127.0.0.1:1}]");
  ControlPlane control(dispatcher_, time_, snapshot);
  bool warm = false;
  control.Start([&] { warm = true; });
  EXPECT_TRUE(warm);
}

TEST_F(ControlPlaneTest, DrainAndEnableDriveAvailabilityAndMode) {
  RuntimeSnapshotPtr snapshot =
      MakeSnapshot("[{address: 127.0.0.1:1}, {address: 127.0.0.1:2, backup: true}]");
  ControlPlane control(dispatcher_, time_, snapshot);
  const upstream::Cluster& cluster = *snapshot->clusters[0];
  upstream::Host& primary = *cluster.hosts()[0];
  upstream::Host& backup = *cluster.hosts()[1];

  ASSERT_TRUE(control.DrainHost("cs", "127.0.0.1:1").ok());
  EXPECT_FALSE(primary.state().available());
  EXPECT_EQ(control.mode(0), mode::UpstreamMode::kFailover);
  EXPECT_EQ(cluster.mode().load(), static_cast<int>(mode::UpstreamMode::kFailover));

  ASSERT_TRUE(control.DrainHost("cs", "127.0.0.1:2").ok());
  EXPECT_FALSE(backup.state().available());
  EXPECT_EQ(control.mode(0), mode::UpstreamMode::kReadOnly);

  time_.Advance(absl::Seconds(1));
  ASSERT_TRUE(control.EnableHost("cs", "127.0.0.1:1").ok());
  EXPECT_TRUE(primary.state().available());
  EXPECT_EQ(primary.state().available_since(), time_.Monotonic());  // slow start from now
  EXPECT_EQ(control.mode(0), mode::UpstreamMode::kNormal);

  EXPECT_EQ(control.DrainHost("cs", "127.0.0.1:9").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(control.DrainHost("other", "127.0.0.1:1").code(), absl::StatusCode::kNotFound);
}

TEST_F(ControlPlaneTest, ReadOnlyWaitsForReadOnlyAfterWhenHostsFail) {
  RuntimeSnapshotPtr snapshot = MakeSnapshot(
      "[{address: 127.0.0.1:1}, {address: 127.0.0.1:2}]",
      "    outlier_detection: {consecutive_gateway_failures: 1, max_ejection_percent: 100,\n"
      "                        min_available_hosts: 0}\n"
      "    read_only_after: 3s\n");
  ControlPlane control(dispatcher_, time_, snapshot);
  for (const upstream::HostSharedPtr& host : snapshot->clusters[0]->hosts()) {
    control.Report(*host, upstream::Outcome::kGatewayFailure);
  }
  dispatcher_.RunReady();
  for (const upstream::HostSharedPtr& host : snapshot->clusters[0]->hosts()) {
    ASSERT_FALSE(host->state().available());
  }
  // Every host ejected, but not yet for read_only_after: requests still go to the hosts.
  EXPECT_EQ(control.mode(0), mode::UpstreamMode::kNormal);
  time_.Advance(absl::Seconds(3));
  ASSERT_TRUE(control.SetReadOnlyOverride("cs", std::nullopt).ok());  // re-evaluates
  EXPECT_EQ(control.mode(0), mode::UpstreamMode::kReadOnly);
  EXPECT_EQ(snapshot->clusters[0]->mode().load(), static_cast<int>(mode::UpstreamMode::kReadOnly));
}

TEST_F(ControlPlaneTest, ReadOnlyOverrideOnAndOff) {
  RuntimeSnapshotPtr snapshot = MakeSnapshot("[{address: 127.0.0.1:1}]");
  ControlPlane control(dispatcher_, time_, snapshot);
  ASSERT_TRUE(control.SetReadOnlyOverride("cs", true).ok());
  EXPECT_EQ(control.mode(0), mode::UpstreamMode::kReadOnly);
  ASSERT_TRUE(control.SetReadOnlyOverride("cs", std::nullopt).ok());
  EXPECT_EQ(control.mode(0), mode::UpstreamMode::kNormal);
  ASSERT_TRUE(control.DrainHost("cs", "127.0.0.1:1").ok());
  EXPECT_EQ(control.mode(0), mode::UpstreamMode::kReadOnly);
  ASSERT_TRUE(control.SetReadOnlyOverride("cs", false).ok());  // keep trying upstream
  EXPECT_EQ(control.mode(0), mode::UpstreamMode::kNormal);
  EXPECT_EQ(control.SetReadOnlyOverride("nope", true).code(), absl::StatusCode::kNotFound);
}

TEST_F(ControlPlaneTest, OutcomesWithoutOutlierDetectionAreIgnored) {
  RuntimeSnapshotPtr snapshot = MakeSnapshot("[{address: 127.0.0.1:1}, {address: 127.0.0.1:2}]");
  ControlPlane control(dispatcher_, time_, snapshot);
  upstream::Host& host = *snapshot->clusters[0]->hosts()[0];
  for (int i = 0; i < 20; ++i) {
    control.Report(host, upstream::Outcome::kGatewayFailure);
  }
  EXPECT_EQ(host.state().consecutive_gateway_failures(), 0u);
  EXPECT_TRUE(host.state().available());
}

constexpr const char* kOutlier =
    "    outlier_detection: {consecutive_5xx: 5, consecutive_gateway_failures: 3,\n"
    "                        base_ejection_time: 30s, max_ejection_percent: 50}\n";

TEST_F(ControlPlaneTest, GatewayFailuresEjectAHostOnTheMainThread) {
  RuntimeSnapshotPtr snapshot =
      MakeSnapshot("[{address: 127.0.0.1:1}, {address: 127.0.0.1:2}]", kOutlier);
  ControlPlane control(dispatcher_, time_, snapshot);
  upstream::Host& host = *snapshot->clusters[0]->hosts()[0];
  control.Report(host, upstream::Outcome::kGatewayFailure);
  control.Report(host, upstream::Outcome::kGatewayFailure);
  dispatcher_.RunReady();
  EXPECT_FALSE(control.ejected(host));
  control.Report(host, upstream::Outcome::kGatewayFailure);
  EXPECT_TRUE(host.state().available());  // workers only report; the main thread decides
  dispatcher_.RunReady();
  EXPECT_TRUE(control.ejected(host));
  EXPECT_FALSE(host.state().available());
  EXPECT_EQ(control.mode(0), mode::UpstreamMode::kNormal);
  // 50% of two hosts is one: the second host stays whatever it does.
  upstream::Host& other = *snapshot->clusters[0]->hosts()[1];
  for (int i = 0; i < 3; ++i) {
    control.Report(other, upstream::Outcome::kGatewayFailure);
  }
  dispatcher_.RunReady();
  EXPECT_FALSE(control.ejected(other));
  EXPECT_TRUE(other.state().available());
}

TEST_F(ControlPlaneTest, WatchTimeoutsAndDepartedClientsAreNotFailures) {
  RuntimeSnapshotPtr snapshot =
      MakeSnapshot("[{address: 127.0.0.1:1}, {address: 127.0.0.1:2}]", kOutlier);
  ControlPlane control(dispatcher_, time_, snapshot);
  upstream::Host& host = *snapshot->clusters[0]->hosts()[0];
  for (int i = 0; i < 10; ++i) {
    control.Report(host, upstream::Outcome::kNeutral);
  }
  dispatcher_.RunReady();
  EXPECT_FALSE(control.ejected(host));
  EXPECT_EQ(host.state().consecutive_gateway_failures(), 0u);
}

}  // namespace
}  // namespace confgate::server
