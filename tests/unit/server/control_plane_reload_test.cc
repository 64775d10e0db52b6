// Host state across reloads: it belongs to the (upstream, address), not to the Host object a
// reload builds, and the control plane names hosts by HostId, never by pointer.
#include "confgate/config/loader.h"
#include "gtest/gtest.h"
#include "server/control_plane.h"

namespace confgate::server {
namespace {

constexpr const char* kOutlier =
    "    outlier_detection: {consecutive_5xx: 5, consecutive_gateway_failures: 1,\n"
    "                        base_ejection_time: 30s, max_ejection_percent: 50}\n";

config::Config Load(const std::string& servers) {
  config::LoadResult loaded = config::LoadConfigFromString(
      "listeners: [{address: 127.0.0.1:0}]\n"
      "upstreams:\n"
      "  cs:\n"
      "    servers: " +
          servers + "\n" + kOutlier + "routes: [{match: {prefix: /}, upstream: cs}]\n",
      "test");
  EXPECT_TRUE(loaded.ok()) << (loaded.ok() ? "" : loaded.errors[0].ToString());
  return loaded.config;
}

RuntimeSnapshotPtr Build(const std::string& servers, const RuntimeSnapshotPtr& previous) {
  absl::StatusOr<RuntimeSnapshotPtr> snapshot = BuildRuntimeSnapshot(Load(servers), previous.get());
  EXPECT_TRUE(snapshot.ok()) << snapshot.status();
  return *snapshot;
}

upstream::Host& HostAt(const RuntimeSnapshotPtr& snapshot, size_t index) {
  return *snapshot->clusters[0]->hosts()[index];
}

class ControlPlaneReloadTest : public ::testing::Test {
 protected:
  event::Dispatcher dispatcher_;
  SimulatedTimeSource time_;
};

TEST_F(ControlPlaneReloadTest, AReweightKeepsAnEjectedHostEjectedWithItsCounters) {
  RuntimeSnapshotPtr first = Build("[{address: 127.0.0.1:1}, {address: 127.0.0.1:2}]", nullptr);
  ControlPlane control(dispatcher_, time_, first);
  upstream::Host& host = HostAt(first, 0);
  host.state().outcomes()[static_cast<size_t>(upstream::Outcome::kSuccess)] = 7;
  control.Report(host, upstream::Outcome::kGatewayFailure);
  dispatcher_.RunReady();
  ASSERT_TRUE(control.ejected(host));

  // Only the weight and the backup flag change: same address, same state.
  RuntimeSnapshotPtr reweighted =
      Build("[{address: 127.0.0.1:1, weight: 5}, {address: 127.0.0.1:2, backup: true}]", first);
  control.Reload(reweighted);
  upstream::Host& same = HostAt(reweighted, 0);
  EXPECT_EQ(same.weight(), 5u);
  EXPECT_EQ(same.id(), host.id());
  EXPECT_TRUE(control.ejected(same));
  EXPECT_EQ(control.ejection_count(same), 1u);
  EXPECT_TRUE(same.state().ejected());
  EXPECT_FALSE(same.state().available());
  EXPECT_EQ(same.state().outcomes()[static_cast<size_t>(upstream::Outcome::kSuccess)].load(), 7u);
  EXPECT_EQ(
      same.state()
          .ejections()[static_cast<size_t>(upstream::EjectionReason::kConsecutiveGatewayFailures)]
          .load(),
      1u);

  // A new address is a new host: fresh state, whatever the old one went through.
  RuntimeSnapshotPtr moved = Build(
      "[{address: 127.0.0.1:3, weight: 5}, {address: 127.0.0.1:2, backup: true}]", reweighted);
  control.Reload(moved);
  upstream::Host& fresh = HostAt(moved, 0);
  EXPECT_NE(fresh.id(), host.id());
  EXPECT_FALSE(control.ejected(fresh));
  EXPECT_EQ(control.ejection_count(fresh), 0u);
  EXPECT_TRUE(fresh.state().available());
  EXPECT_EQ(fresh.state().requests(), 0u);
}

TEST_F(ControlPlaneReloadTest, ALateOutcomeForARemovedHostNeverReachesItsSuccessor) {
  RuntimeSnapshotPtr first = Build("[{address: 127.0.0.1:1}, {address: 127.0.0.1:2}]", nullptr);
  ControlPlane control(dispatcher_, time_, first);
  // A worker reports a failure on 127.0.0.1:1; the post is still queued when reloads remove
  // the address and bring it back.
  control.Report(HostAt(first, 0), upstream::Outcome::kGatewayFailure);
  upstream::HostId old_id = HostAt(first, 0).id();

  RuntimeSnapshotPtr removed = Build("[{address: 127.0.0.1:2}]", first);
  control.Reload(removed);
  first.reset();  // the old Host is gone; its memory may be reused by the next one
  RuntimeSnapshotPtr back = Build("[{address: 127.0.0.1:2}, {address: 127.0.0.1:1}]", removed);
  control.Reload(back);
  upstream::Host& successor = HostAt(back, 1);
  ASSERT_EQ(successor.address(), "127.0.0.1:1");
  EXPECT_NE(successor.id(), old_id);

  dispatcher_.RunReady();
  EXPECT_FALSE(control.ejected(successor));
  EXPECT_TRUE(successor.state().available());
  EXPECT_EQ(successor.state().consecutive_gateway_failures(), 0u);
  EXPECT_FALSE(control.ejected(HostAt(back, 0)));
}

TEST_F(ControlPlaneReloadTest, AnOutcomeReportedOnAnOldSnapshotsHostAfterItsRemovalIsIgnored) {
  RuntimeSnapshotPtr first = Build("[{address: 127.0.0.1:1}, {address: 127.0.0.1:2}]", nullptr);
  ControlPlane control(dispatcher_, time_, first);
  RuntimeSnapshotPtr removed = Build("[{address: 127.0.0.1:2}]", first);
  control.Reload(removed);
  RuntimeSnapshotPtr back = Build("[{address: 127.0.0.1:2}, {address: 127.0.0.1:1}]", removed);
  control.Reload(back);
  // A request that started on the first snapshot ends now, on the host the reload removed.
  control.Report(HostAt(first, 0), upstream::Outcome::kGatewayFailure);
  dispatcher_.RunReady();
  upstream::Host& successor = HostAt(back, 1);
  EXPECT_FALSE(control.ejected(successor));
  EXPECT_TRUE(successor.state().available());
  EXPECT_EQ(successor.state().consecutive_gateway_failures(), 0u);
}

}  // namespace
}  // namespace confgate::server
