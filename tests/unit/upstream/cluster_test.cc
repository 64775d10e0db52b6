#include <arpa/inet.h>
#include <netinet/in.h>

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
  EXPECT_TRUE(host.available());
  EXPECT_EQ(host.available_since(), MonotonicTime::min());
  SimulatedTimeSource time;
  time.Advance(absl::Seconds(3));
  host.SetAvailable(true, time.Monotonic());  // already available: no new slow start
  EXPECT_EQ(host.available_since(), MonotonicTime::min());
  host.SetAvailable(false, time.Monotonic());
  EXPECT_FALSE(host.available());
  time.Advance(absl::Seconds(1));
  host.SetAvailable(true, time.Monotonic());
  EXPECT_EQ(host.available_since(), time.Monotonic());
  host.active_requests() = 5;
  host.active_watches() = 2;
  EXPECT_EQ(host.load(), 3u);
}

TEST(Host, CountsRequestsFailuresAndTheLastFailure) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  Host host("u", "10.0.0.1:80", reinterpret_cast<sockaddr*>(&addr), sizeof(addr), 1, false);
  EXPECT_EQ(host.last_failure().reason, FailureReason::kNone);
  host.outcomes()[static_cast<size_t>(Outcome::kSuccess)] = 5;
  host.outcomes()[static_cast<size_t>(Outcome::kServerError)] = 2;
  host.outcomes()[static_cast<size_t>(Outcome::kGatewayFailure)] = 3;
  host.outcomes()[static_cast<size_t>(Outcome::kNeutral)] = 1;
  EXPECT_EQ(host.requests(), 11u);
  EXPECT_EQ(host.failures(), 5u);
  absl::Time when = absl::FromUnixMillis(1767225600123);
  host.RecordFailure(FailureReason::kStatus, 503, when);
  Host::LastFailure failure = host.last_failure();
  EXPECT_EQ(failure.reason, FailureReason::kStatus);
  EXPECT_EQ(failure.status, 503);
  EXPECT_EQ(failure.when, when);
  host.RecordFailure(FailureReason::kConnect, 0, when + absl::Seconds(1));
  failure = host.last_failure();
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
  hosts[2]->drained() = true;  // state that must survive a refresh

  DnsResults second = {{"config.svc:8080", {"10.0.0.2", "10.0.0.3"}}};
  auto refreshed = BuildClusters(config, *clusters, second);
  ASSERT_TRUE(refreshed.ok());
  const auto& next = (*refreshed)[0]->hosts();
  ASSERT_EQ(next.size(), 3u);
  EXPECT_EQ(next[0], hosts[0]);  // the fixed server keeps its Host
  EXPECT_EQ(next[1], hosts[2]);  // 10.0.0.2 stays the same object, drained
  EXPECT_TRUE(next[1]->drained().load());
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
