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

}  // namespace
}  // namespace confgate::upstream
