#include <arpa/inet.h>
#include <netinet/in.h>

#include <memory>

#include "confgate/upstream/host.h"
#include "gtest/gtest.h"

namespace confgate::upstream {
namespace {

TEST(RetryBudget, AllowsThreeConcurrentRetriesOnAQuietUpstream) {
  config::UpstreamConfig config;
  config.retries.budget_percent = 20;
  Cluster cluster(config, {});
  cluster.active_requests() = 1;
  for (uint32_t retries = 0; retries < 3; ++retries) {
    cluster.active_retries() = retries;
    EXPECT_TRUE(cluster.RetryBudgetAllows()) << retries;
  }
  cluster.active_retries() = 3;
  EXPECT_FALSE(cluster.RetryBudgetAllows());
}

TEST(RetryBudget, CapsRetriesAtTheShareOfActiveRequests) {
  config::UpstreamConfig config;
  config.retries.budget_percent = 20;
  Cluster cluster(config, {});
  cluster.active_requests() = 100;
  cluster.active_retries() = 19;
  EXPECT_TRUE(cluster.RetryBudgetAllows());
  cluster.active_retries() = 20;
  EXPECT_FALSE(cluster.RetryBudgetAllows());
}

TEST(Host, AvailabilityChangesRestartSlowStartOnlyOnRecovery) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  Host host("u", "10.0.0.1:80", reinterpret_cast<sockaddr*>(&addr), sizeof(addr), 1, false);
  EXPECT_TRUE(host.state().available());
  EXPECT_EQ(host.state().available_since(), MonotonicTime::min());
  SimulatedTimeSource time;
  time.Advance(absl::Seconds(3));
  host.state().SetAvailable(true, time.Monotonic());  // already available: no new slow start
  EXPECT_EQ(host.state().available_since(), MonotonicTime::min());
  host.state().SetAvailable(false, time.Monotonic());
  EXPECT_FALSE(host.state().available());
  time.Advance(absl::Seconds(1));
  host.state().SetAvailable(true, time.Monotonic());
  EXPECT_EQ(host.state().available_since(), time.Monotonic());
  host.state().active_requests() = 5;
  host.state().active_watches() = 2;
  EXPECT_EQ(host.state().load(), 3u);
}

TEST(Host, CountsRequestsFailuresAndTheLastFailure) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  Host host("u", "10.0.0.1:80", reinterpret_cast<sockaddr*>(&addr), sizeof(addr), 1, false);
  EXPECT_EQ(host.state().last_failure().reason, FailureReason::kNone);
  host.state().outcomes()[static_cast<size_t>(Outcome::kSuccess)] = 5;
  host.state().outcomes()[static_cast<size_t>(Outcome::kServerError)] = 2;
  host.state().outcomes()[static_cast<size_t>(Outcome::kGatewayFailure)] = 3;
  host.state().outcomes()[static_cast<size_t>(Outcome::kNeutral)] = 1;
  EXPECT_EQ(host.state().requests(), 11u);
  EXPECT_EQ(host.state().failures(), 5u);
  absl::Time when = absl::FromUnixMillis(1767225600123);
  host.state().RecordFailure(FailureReason::kStatus, 503, when);
  HostState::LastFailure failure = host.state().last_failure();
  EXPECT_EQ(failure.reason, FailureReason::kStatus);
  EXPECT_EQ(failure.status, 503);
  EXPECT_EQ(failure.when, when);
  host.state().RecordFailure(FailureReason::kConnect, 0, when + absl::Seconds(1));
  failure = host.state().last_failure();
  EXPECT_EQ(std::string(FailureReasonName(failure.reason)), "connect_failure");
  EXPECT_EQ(failure.status, 0);
  EXPECT_EQ(failure.when, when + absl::Seconds(1));
}

}  // namespace
}  // namespace confgate::upstream

namespace confgate::upstream {
namespace {

config::Config DnsConfig() {
  config::Config config;
  config::UpstreamConfig upstream;
  upstream.name = "cs";
  config::ServerConfig fixed;
  fixed.address = {"127.0.0.1", 8081};
  config::ServerConfig discovered;
  discovered.address = {"config.svc", 8080};
  discovered.dns = "config.svc:8080";
  upstream.servers = {fixed, discovered};
  config.upstreams.push_back(upstream);
  return config;
}

TEST(BuildClusters, DnsServersBecomeOneHostPerAddressAndKeepState) {
  config::Config config = DnsConfig();
  DnsResults first = {{"config.svc:8080", {"10.0.0.1", "10.0.0.2"}}};
  auto clusters = BuildClusters(config, {}, first);
  ASSERT_TRUE(clusters.ok());
  const auto& hosts = (*clusters)[0]->hosts();
  ASSERT_EQ(hosts.size(), 3u);
  EXPECT_EQ(hosts[1]->address(), "10.0.0.1:8080");
  EXPECT_EQ(hosts[2]->address(), "10.0.0.2:8080");
  hosts[2]->state().SetDrained(true);  // state that must survive a refresh

  DnsResults second = {{"config.svc:8080", {"10.0.0.2", "10.0.0.3"}}};
  auto refreshed = BuildClusters(config, *clusters, second);
  ASSERT_TRUE(refreshed.ok());
  const auto& next = (*refreshed)[0]->hosts();
  ASSERT_EQ(next.size(), 3u);
  EXPECT_EQ(next[0], hosts[0]);  // the fixed server keeps its Host
  EXPECT_EQ(next[1], hosts[2]);  // 10.0.0.2 stays the same object, drained
  EXPECT_TRUE(next[1]->state().drained());
  EXPECT_EQ(next[2]->address(), "10.0.0.3:8080");  // new address, new host
  for (const HostSharedPtr& host : next) {
    EXPECT_NE(host->address(), "10.0.0.1:8080");  // vanished address is gone
  }
}

TEST(BuildClusters, AnEmptyAnswerLeavesOnlyFixedServers) {
  auto clusters = BuildClusters(DnsConfig(), {}, {{"config.svc:8080", {}}});
  ASSERT_TRUE(clusters.ok());
  EXPECT_EQ((*clusters)[0]->hosts().size(), 1u);
}

TEST(ResolveNow, NumericAndLocalNames) {
  auto numeric = ResolveNow({"127.0.0.1", 80});
  ASSERT_TRUE(numeric.ok());
  EXPECT_EQ(*numeric, std::vector<std::string>{"127.0.0.1"});
  EXPECT_FALSE(ResolveNow({"no-such-host.invalid", 80}).ok());
}

}  // namespace
}  // namespace confgate::upstream

namespace confgate::upstream {
namespace {

config::Config TwoServers(uint32_t weight, bool backup, uint16_t port) {
  config::Config config;
  config::UpstreamConfig upstream;
  upstream.name = "cs";
  config::ServerConfig first;
  first.address = {"127.0.0.1", port};
  first.weight = weight;
  first.backup = backup;
  config::ServerConfig second;
  second.address = {"127.0.0.1", 8082};
  upstream.servers = {first, second};
  config.upstreams.push_back(upstream);
  return config;
}

TEST(BuildClusters, StateFollowsTheAddressWhateverElseChanges) {
  auto first = BuildClusters(TwoServers(1, false, 8081));
  ASSERT_TRUE(first.ok());
  const HostSharedPtr& host = (*first)[0]->hosts()[0];
  host->state().SetEjected(true);
  host->state().outcomes()[0] = 4;

  auto reweighted = BuildClusters(TwoServers(3, true, 8081), *first);
  ASSERT_TRUE(reweighted.ok());
  const HostSharedPtr& same = (*reweighted)[0]->hosts()[0];
  EXPECT_NE(same, host);  // a new description...
  EXPECT_EQ(same->weight(), 3u);
  EXPECT_TRUE(same->backup());
  EXPECT_EQ(same->shared_state(), host->shared_state());  // ...over the same state
  EXPECT_EQ(same->id(), host->id());
  EXPECT_TRUE(same->state().ejected());
  EXPECT_EQ((*reweighted)[0]->hosts()[1], (*first)[0]->hosts()[1]);  // unchanged: same Host

  auto moved = BuildClusters(TwoServers(3, true, 8083), *reweighted);
  ASSERT_TRUE(moved.ok());
  const HostSharedPtr& fresh = (*moved)[0]->hosts()[0];
  EXPECT_NE(fresh->id(), host->id());
  EXPECT_FALSE(fresh->state().ejected());
  EXPECT_EQ(fresh->state().requests(), 0u);

  // Back at the first address two reloads later: still a new host, never the old id.
  auto back = BuildClusters(TwoServers(1, false, 8081), *moved);
  ASSERT_TRUE(back.ok());
  EXPECT_NE((*back)[0]->hosts()[0]->id(), host->id());
}

TEST(HostState, IdsAreNeverReused) {
  HostId previous = 0;
  for (int i = 0; i < 100; ++i) {
    auto state = std::make_unique<HostState>();
    EXPECT_GT(state->id(), previous);
    previous = state->id();
  }
}

TEST(HostState, ATrialIsClaimedOnceAndLeavesTheHostUnavailable) {
  HostState state;
  state.SetAvailable(false, MonotonicTime{});
  state.SetEjected(true);
  state.OpenTrial();
  EXPECT_TRUE(state.available());
  EXPECT_TRUE(state.trial_open());
  EXPECT_TRUE(state.ejected());  // the other flags are untouched
  EXPECT_TRUE(state.ClaimTrial());
  EXPECT_FALSE(state.ClaimTrial());
  EXPECT_FALSE(state.available());
  EXPECT_FALSE(state.trial_open());
  EXPECT_TRUE(state.trial_in_flight());
  EXPECT_TRUE(state.TakeTrialInFlight());
  EXPECT_FALSE(state.TakeTrialInFlight());
  EXPECT_TRUE(state.ejected());
}

}  // namespace
}  // namespace confgate::upstream
