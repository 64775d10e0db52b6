#include "server/dns_refresher.h"

#include "confgate/config/loader.h"
#include "confgate/server/server.h"
#include "gtest/gtest.h"
#include "server/control_plane.h"

namespace confgate::server {
namespace {

config::Config Load(const std::string& servers) {
  config::LoadResult loaded = config::LoadConfigFromString(
      "listeners: [{address: 127.0.0.1:0}]\n"
      "upstreams: {cs: {dns_refresh: 1s, servers: " +
          servers +
          "}}\n"
          "routes: [{match: {prefix: /}, upstream: cs}]\n",
      "test");
  EXPECT_TRUE(loaded.ok()) << (loaded.ok() ? "" : loaded.errors[0].ToString());
  return loaded.config;
}

// A resolver the test answers: names in `known_` resolve, the rest fail.
class DnsRefresherTest : public ::testing::Test {
 protected:
  DnsRefresher::Resolver Resolver() {
    return [this](const config::SocketAddress& address, DnsRefresher::Answer done) {
      ++lookups_;
      auto found = known_.find(address.host);
      if (found == known_.end()) {
        done(absl::NotFoundError("no such name"));
      } else {
        done(found->second);
      }
    };
  }

  event::Dispatcher dispatcher_;
  SimulatedTimeSource time_;
  std::map<std::string, std::vector<std::string>> known_;
  int lookups_ = 0;
};

// Kubernetes may start confgate before DNS answers: the upstream starts with no host (read-only),
// and the server joins once its name resolves.
TEST_F(DnsRefresherTest, AnAddressNameThatDoesNotResolveYetJoinsOnceItDoes) {
  config::Config config = Load("[{address: 'pending.test:8080'}]");
  upstream::DnsResults initial{{"pending.test:8080", {}}};  // start-up: did not resolve
  absl::StatusOr<RuntimeSnapshotPtr> built = BuildRuntimeSnapshot(config, nullptr, initial);
  ASSERT_TRUE(built.ok()) << built.status();
  RuntimeSnapshotPtr current = *built;
  EXPECT_TRUE(current->clusters[0]->hosts().empty());
  ControlPlane control(dispatcher_, time_, current);
  control.Start([] {});
  EXPECT_EQ(control.mode(0), mode::UpstreamMode::kReadOnly);

  int changes = 0;
  DnsRefresher refresher(
      dispatcher_, [&] { ++changes; }, Resolver());
  refresher.Watch(config, initial);
  refresher.RefreshNow();
  EXPECT_EQ(changes, 0);
  EXPECT_EQ(lookups_, 1);

  known_["pending.test"] = {"127.0.0.1"};
  refresher.RefreshNow();
  EXPECT_EQ(changes, 1);
  built = BuildRuntimeSnapshot(config, current.get(), refresher.results());
  ASSERT_TRUE(built.ok()) << built.status();
  current = *built;
  ASSERT_EQ(current->clusters[0]->hosts().size(), 1u);
  EXPECT_EQ(current->clusters[0]->hosts()[0]->address(), "pending.test:8080");
  control.Reload(current);
  EXPECT_TRUE(current->clusters[0]->hosts()[0]->state().available());
  EXPECT_EQ(control.mode(0), mode::UpstreamMode::kNormal);

  // An `address:` name is resolved once: no lookups after it resolved.
  refresher.RefreshNow();
  EXPECT_EQ(lookups_, 2);
}

TEST_F(DnsRefresherTest, ADnsNameKeepsBeingRefreshedAfterItResolves) {
  config::Config config = Load("[{dns: 'pending.test:8080'}]");
  int changes = 0;
  DnsRefresher refresher(
      dispatcher_, [&] { ++changes; }, Resolver());
  refresher.Watch(config, {{"pending.test:8080", {}}});
  refresher.RefreshNow();
  EXPECT_EQ(changes, 0);
  known_["pending.test"] = {"127.0.0.1", "127.0.0.2"};
  refresher.RefreshNow();
  EXPECT_EQ(changes, 1);
  absl::StatusOr<RuntimeSnapshotPtr> built =
      BuildRuntimeSnapshot(config, nullptr, refresher.results());
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_EQ((*built)->clusters[0]->hosts().size(), 2u);
  known_["pending.test"] = {"127.0.0.2"};
  refresher.RefreshNow();
  EXPECT_EQ(changes, 2);
  EXPECT_EQ(lookups_, 3);
}

TEST(ResolveNames, AnUnresolvableNameIsNoErrorAndGivesNoHost) {
  config::LoadResult loaded = config::LoadConfigFromString(
      "listeners: [{address: 127.0.0.1:0}]\n"
      "upstreams: {cs: {servers: [{address: 'no-such-host.invalid:8080'},\n"
      "                           {dns: 'no-such-host.invalid:8081'}, {address: 127.0.0.1:1}]}}\n"
      "routes: [{match: {prefix: /}, upstream: cs}]\n",
      "test");
  ASSERT_TRUE(loaded.ok());
  upstream::DnsResults dns = ResolveNames(loaded.config, {});
  EXPECT_EQ(dns.size(), 2u);
  EXPECT_TRUE(dns["no-such-host.invalid:8080"].empty());
  absl::StatusOr<RuntimeSnapshotPtr> built = BuildRuntimeSnapshot(loaded.config, nullptr, dns);
  ASSERT_TRUE(built.ok()) << built.status();
  ASSERT_EQ((*built)->clusters[0]->hosts().size(), 1u);
  EXPECT_EQ((*built)->clusters[0]->hosts()[0]->address(), "127.0.0.1:1");
}

}  // namespace
}  // namespace confgate::server
