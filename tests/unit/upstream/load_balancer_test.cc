#include "confgate/upstream/load_balancer.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <map>

#include "gtest/gtest.h"
#include "upstream/lb/strategies.h"

namespace confgate::upstream {
namespace {

HostSharedPtr MakeHost(uint16_t port, uint32_t weight = 1, bool backup = false) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return std::make_shared<Host>("config-service", "10.0.0." + std::to_string(port) + ":80",
                                reinterpret_cast<sockaddr*>(&addr), sizeof(addr), weight, backup);
}

std::vector<HostSharedPtr> MakeHosts(std::vector<uint32_t> weights) {
  std::vector<HostSharedPtr> hosts;
  for (size_t i = 0; i < weights.size(); ++i) {
    hosts.push_back(MakeHost(static_cast<uint16_t>(i + 1), weights[i]));
  }
  return hosts;
}

class BalancerTest : public ::testing::Test {
 protected:
  std::unique_ptr<LoadBalancer> Make(const std::string& strategy,
                                     const std::vector<HostSharedPtr>& hosts,
                                     absl::Duration slow_start = absl::ZeroDuration()) {
    config::UpstreamConfig config;
    config.balancer = strategy;
    config.slow_start = slow_start;
    return CreateLoadBalancer(config, hosts, BalancerParams{time_, random_, slow_start});
  }

  std::map<Host*, int> Count(LoadBalancer& lb, int picks, PickContext context = {}) {
    std::map<Host*, int> counts;
    for (int i = 0; i < picks; ++i) {
      Host* host = lb.ChooseHost(context);
      EXPECT_NE(host, nullptr);
      ++counts[host];
    }
    return counts;
  }

  SimulatedTimeSource time_;
  SeededRandom random_{42};
};

TEST_F(BalancerTest, RoundRobinRotatesEvenlyAndSkipsUnavailableHosts) {
  auto hosts = MakeHosts({1, 1, 1});
  auto lb = Make("round_robin", hosts);
  auto counts = Count(*lb, 300);
  for (const auto& host : hosts) {
    EXPECT_EQ(counts[host.get()], 100);
  }
  hosts[1]->state().SetAvailable(false, time_.Monotonic());
  counts = Count(*lb, 300);
  EXPECT_EQ(counts[hosts[1].get()], 0);
  EXPECT_EQ(counts[hosts[0].get()], 150);
}

TEST_F(BalancerTest, SmoothWeightedRoundRobinInterleaves) {
  auto hosts = MakeHosts({5, 1, 1});
  auto lb = Make("weighted_round_robin", hosts);
  std::string sequence;
  for (int i = 0; i < 14; ++i) {
    Host* host = lb->ChooseHost({});
    sequence += host == hosts[0].get() ? 'a' : host == hosts[1].get() ? 'b' : 'c';
  }
  // nginx's smooth weighted round robin for 5,1,1: never five a's in a row.
  EXPECT_EQ(sequence, "aabacaaaabacaa");
}

TEST_F(BalancerTest, WeightedStrategiesFollowWeightsWithin2Percent) {
  for (const char* strategy : {"weighted_round_robin", "random"}) {
    auto hosts = MakeHosts({5, 3, 2});
    auto lb = Make(strategy, hosts);
    auto counts = Count(*lb, 10000);
    EXPECT_NEAR(counts[hosts[0].get()] / 10000.0, 0.5, 0.02) << strategy;
    EXPECT_NEAR(counts[hosts[1].get()] / 10000.0, 0.3, 0.02) << strategy;
    EXPECT_NEAR(counts[hosts[2].get()] / 10000.0, 0.2, 0.02) << strategy;
  }
}

TEST_F(BalancerTest, RandomIsUniformWithEqualWeights) {
  auto hosts = MakeHosts({1, 1, 1, 1});
  auto lb = Make("random", hosts);
  auto counts = Count(*lb, 10000);
  for (const auto& host : hosts) {
    EXPECT_NEAR(counts[host.get()] / 10000.0, 0.25, 0.02);
  }
}

TEST_F(BalancerTest, LeastConnectionsSteersAwayFromLoadAndIgnoresWatches) {
  auto hosts = MakeHosts({1, 1, 1});
  auto lb = Make("least_connections", hosts);
  hosts[0]->state().active_requests() = 5;
  hosts[1]->state().active_requests() = 2;
  EXPECT_EQ(lb->ChooseHost({}), hosts[2].get());
  hosts[2]->state().active_requests() = 9;
  hosts[2]->state().active_watches() = 9;  // parked watches are not load
  auto counts = Count(*lb, 100);
  EXPECT_EQ(counts[hosts[2].get()], 100);
  // Ties are broken in rotation.
  hosts[0]->state().active_requests() = 0;
  hosts[1]->state().active_requests() = 0;
  counts = Count(*lb, 300);
  EXPECT_EQ(counts[hosts[0].get()], 100);
  EXPECT_EQ(counts[hosts[1].get()], 100);
}

TEST_F(BalancerTest, LeastConnectionsIsRelativeToWeight) {
  auto hosts = MakeHosts({4, 1});
  auto lb = Make("least_connections", hosts);
  hosts[0]->state().active_requests() = 3;  // 3/4 < 1/1
  hosts[1]->state().active_requests() = 1;
  EXPECT_EQ(lb->ChooseHost({}), hosts[0].get());
}

TEST_F(BalancerTest, PowerOfTwoChoicesAvoidsTheLoadedHost) {
  auto hosts = MakeHosts({1, 1, 1});
  auto lb = Make("p2c", hosts);
  hosts[0]->state().active_requests() = 50;
  auto counts = Count(*lb, 3000);
  // The two draws always differ, so the loaded host always loses its comparison.
  EXPECT_EQ(counts[hosts[0].get()], 0);
  EXPECT_NEAR(counts[hosts[1].get()] / 3000.0, 0.5, 0.05);
  hosts[0]->state().active_watches() = 50;  // all its requests are parked watches
  counts = Count(*lb, 3000);
  EXPECT_NEAR(counts[hosts[0].get()] / 3000.0, 1.0 / 3, 0.05);
}

TEST_F(BalancerTest, MaglevKeepsKeysOnTheirHost) {
  auto hosts = MakeHosts({1, 1, 1, 1, 1});
  auto lb = Make("maglev", hosts);
  for (uint64_t key = 0; key < 1000; ++key) {
    uint64_t hash = StableHash("client-" + std::to_string(key));
    Host* first = lb->ChooseHost({{}, hash});
    EXPECT_EQ(lb->ChooseHost({{}, hash}), first);
  }
}

TEST_F(BalancerTest, MaglevRemovingOneHostMovesOnlyItsShare) {
  constexpr int kHosts = 10;
  constexpr int kKeys = 10000;
  std::vector<HostSharedPtr> hosts = MakeHosts(std::vector<uint32_t>(kHosts, 1));
  std::vector<Host*> all;
  for (const auto& host : hosts) {
    all.push_back(host.get());
  }
  std::vector<Host*> fewer(all.begin(), all.end() - 1);
  MaglevStrategy before(all, BalancerParams{time_, random_});
  MaglevStrategy after(fewer, BalancerParams{time_, random_});
  int moved = 0;
  std::map<Host*, int> owned;
  for (int key = 0; key < kKeys; ++key) {
    uint64_t hash = StableHash("key-" + std::to_string(key));
    ++owned[before.Owner(hash)];
    if (before.Owner(hash) != after.Owner(hash)) {
      ++moved;
    }
  }
  EXPECT_LE(moved / static_cast<double>(kKeys), 1.0 / kHosts + 0.02);
  for (Host* host : all) {
    EXPECT_NEAR(owned[host] / static_cast<double>(kKeys), 1.0 / kHosts, 0.02);
  }
  // An unavailable host's keys go elsewhere; everyone else's stay.
  auto lb = Make("maglev", hosts);
  std::vector<Host*> owners;
  for (int key = 0; key < 1000; ++key) {
    owners.push_back(lb->ChooseHost({{}, StableHash("key-" + std::to_string(key))}));
  }
  hosts[3]->state().SetAvailable(false, time_.Monotonic());
  for (int key = 0; key < 1000; ++key) {
    Host* now = lb->ChooseHost({{}, StableHash("key-" + std::to_string(key))});
    EXPECT_NE(now, hosts[3].get());
    if (owners[key] != hosts[3].get()) {
      EXPECT_EQ(now, owners[key]);
    }
  }
}

TEST_F(BalancerTest, MaglevWithoutAKeyStillPicks) {
  auto hosts = MakeHosts({1, 1});
  auto lb = Make("maglev", hosts);
  auto counts = Count(*lb, 10);
  EXPECT_EQ(counts[hosts[0].get()], 5);
}

TEST_F(BalancerTest, BackupsServeOnlyWhenNoPrimaryIsAvailable) {
  for (const char* strategy :
       {"round_robin", "weighted_round_robin", "random", "least_connections", "p2c", "maglev"}) {
    std::vector<HostSharedPtr> hosts{MakeHost(1), MakeHost(2), MakeHost(3, 1, true)};
    auto lb = Make(strategy, hosts);
    auto counts = Count(*lb, 100, {{}, 7});
    EXPECT_EQ(counts[hosts[2].get()], 0) << strategy;
    hosts[0]->state().SetAvailable(false, time_.Monotonic());
    hosts[1]->state().SetAvailable(false, time_.Monotonic());
    counts = Count(*lb, 100, {{}, 7});
    EXPECT_EQ(counts[hosts[2].get()], 100) << strategy;
    hosts[1]->state().SetAvailable(true, time_.Monotonic());
    counts = Count(*lb, 100, {{}, 7});
    EXPECT_EQ(counts[hosts[1].get()], 100) << strategy << ": back to the primary";
    hosts[1]->state().SetAvailable(false, time_.Monotonic());
    hosts[2]->state().SetAvailable(false, time_.Monotonic());
    // No host available: until read-only starts, requests go to the primaries anyway.
    Host* panic = lb->ChooseHost({});
    EXPECT_TRUE(panic == hosts[0].get() || panic == hosts[1].get()) << strategy;
    for (const auto& host : hosts) {
      host->state().SetDrained(true);
    }
    EXPECT_EQ(lb->ChooseHost({}), nullptr) << strategy << ": drained hosts never take traffic";
  }
}

TEST_F(BalancerTest, PanicBalancesOverAllHostsBelowTheThreshold) {
  for (const char* strategy :
       {"round_robin", "weighted_round_robin", "random", "least_connections", "p2c", "maglev"}) {
    auto hosts = MakeHosts({1, 1, 1, 1});
    config::UpstreamConfig config;
    config.balancer = strategy;  // panic_threshold: the default, 50%
    auto lb = CreateLoadBalancer(config, hosts, BalancerParams{time_, random_});
    hosts[0]->state().SetAvailable(false, time_.Monotonic());
    hosts[1]->state().SetAvailable(false, time_.Monotonic());
    auto counts = Count(*lb, 400, {{}, 7});  // 2 of 4 (50%): not below, no panic
    EXPECT_EQ(counts[hosts[0].get()] + counts[hosts[1].get()], 0) << strategy;
    hosts[2]->state().SetAvailable(false, time_.Monotonic());
    // 1 of 4: every host takes traffic (maglev: each key its own host, available or not).
    std::map<Host*, int> spread;
    for (uint64_t key = 0; key < 400; ++key) {
      ++spread[lb->ChooseHost({{}, key})];
    }
    for (const auto& host : hosts) {
      EXPECT_GT(spread[host.get()], 40) << strategy;
    }
    // A drained host stays out even in panic.
    hosts[0]->state().SetDrained(true);
    for (uint64_t key = 0; key < 400; ++key) {
      EXPECT_NE(lb->ChooseHost({{}, key}), hosts[0].get()) << strategy;
    }
  }
}

TEST_F(BalancerTest, ZeroPanicThresholdKeepsToAvailableHosts) {
  auto hosts = MakeHosts({1, 1, 1, 1});
  config::UpstreamConfig config;
  config.panic_threshold = 0;
  auto lb = CreateLoadBalancer(config, hosts, BalancerParams{time_, random_});
  for (int i = 0; i < 3; ++i) {
    hosts[i]->state().SetAvailable(false, time_.Monotonic());
  }
  auto counts = Count(*lb, 100);
  EXPECT_EQ(counts[hosts[3].get()], 100);
}

TEST_F(BalancerTest, PanicStaysInTheTierInUse) {
  std::vector<HostSharedPtr> hosts{MakeHost(1), MakeHost(2), MakeHost(3, 1, true),
                                   MakeHost(4, 1, true), MakeHost(5, 1, true)};
  auto lb = Make("round_robin", hosts);
  hosts[0]->state().SetAvailable(false, time_.Monotonic());
  hosts[1]->state().SetAvailable(false, time_.Monotonic());
  hosts[3]->state().SetAvailable(false, time_.Monotonic());
  auto counts = Count(*lb, 300);  // backups 2 of 3 available: failover, no panic
  EXPECT_EQ(counts[hosts[2].get()] + counts[hosts[4].get()], 300);
  hosts[4]->state().SetAvailable(false, time_.Monotonic());
  counts = Count(*lb, 300);  // backups 1 of 3: panic over the backups, not the primaries
  EXPECT_EQ(counts[hosts[2].get()], 100);
  EXPECT_EQ(counts[hosts[3].get()], 100);
  EXPECT_EQ(counts[hosts[4].get()], 100);
}

TEST_F(BalancerTest, RetriesPickADifferentHostWhereOneExists) {
  for (const char* strategy :
       {"round_robin", "weighted_round_robin", "random", "least_connections", "p2c", "maglev"}) {
    auto hosts = MakeHosts({1, 1, 1});
    auto lb = Make(strategy, hosts);
    for (int i = 0; i < 50; ++i) {
      std::vector<const Host*> tried{hosts[0].get(), hosts[1].get()};
      EXPECT_EQ(lb->ChooseHost({tried, 99}), hosts[2].get()) << strategy;
    }
    std::vector<const Host*> all_tried{hosts[0].get(), hosts[1].get(), hosts[2].get()};
    EXPECT_NE(lb->ChooseHost({all_tried, 99}), nullptr)
        << strategy << ": falls back to a tried host";
  }
}

TEST_F(BalancerTest, SlowStartRampsTheWeight) {
  auto host = MakeHost(1, 10);
  absl::Duration window = absl::Seconds(10);
  EXPECT_DOUBLE_EQ(EffectiveWeight(*host, time_.Monotonic(), window), 10);  // never recovered
  host->state().SetAvailable(false, time_.Monotonic());
  host->state().SetAvailable(true, time_.Monotonic());
  EXPECT_DOUBLE_EQ(EffectiveWeight(*host, time_.Monotonic(), window), 1);  // 10% at 0%
  time_.Advance(absl::Seconds(5));
  EXPECT_DOUBLE_EQ(EffectiveWeight(*host, time_.Monotonic(), window), 5.5);  // 55% at 50%
  time_.Advance(absl::Seconds(5));
  EXPECT_DOUBLE_EQ(EffectiveWeight(*host, time_.Monotonic(), window), 10);  // 100% at 100%
  EXPECT_DOUBLE_EQ(EffectiveWeight(*host, time_.Monotonic(), absl::ZeroDuration()), 10);
}

TEST_F(BalancerTest, SlowStartShiftsTrafficOfWeightedStrategies) {
  auto hosts = MakeHosts({1, 1});
  auto lb = Make("weighted_round_robin", hosts, absl::Seconds(10));
  hosts[1]->state().SetAvailable(false, time_.Monotonic());
  hosts[1]->state().SetAvailable(true, time_.Monotonic());
  auto counts = Count(*lb, 1100);
  EXPECT_NEAR(counts[hosts[1].get()] / 1100.0, 0.1 / 1.1, 0.01);
  time_.Advance(absl::Seconds(10));
  counts = Count(*lb, 1000);
  EXPECT_NEAR(counts[hosts[1].get()] / 1000.0, 0.5, 0.01);
}

TEST(StableHash, IsStableAndSpreads) {
  EXPECT_EQ(StableHash("abc"), StableHash("abc"));
  EXPECT_NE(StableHash("abc"), StableHash("abd"));
  std::map<uint64_t, int> buckets;
  for (int i = 0; i < 10000; ++i) {
    ++buckets[StableHash(std::to_string(i)) % 10];
  }
  for (const auto& [bucket, count] : buckets) {
    EXPECT_NEAR(count, 1000, 100);
  }
}

}  // namespace
}  // namespace confgate::upstream
