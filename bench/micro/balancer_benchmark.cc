// The cost of one pick per strategy, for pools of 3, 100 and 1000 hosts.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>

#include "confgate/upstream/load_balancer.h"

namespace confgate::upstream {
namespace {

std::vector<HostSharedPtr> MakeHosts(int count) {
  std::vector<HostSharedPtr> hosts;
  for (int i = 0; i < count; ++i) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(8000 + i));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    hosts.push_back(std::make_shared<Host>("bench", "127.0.0.1:" + std::to_string(8000 + i),
                                           reinterpret_cast<sockaddr*>(&addr), sizeof(addr),
                                           1 + i % 3, false));
    hosts.back()->state().active_requests() = static_cast<uint32_t>(i % 7);
  }
  return hosts;
}

void BM_Pick(benchmark::State& state, const char* strategy) {
  std::vector<HostSharedPtr> hosts = MakeHosts(static_cast<int>(state.range(0)));
  RealTimeSource time;
  SeededRandom random(1);
  config::UpstreamConfig config;
  config.balancer = strategy;
  config.slow_start = absl::Seconds(10);
  auto lb = CreateLoadBalancer(config, hosts, BalancerParams{time, random, config.slow_start});
  uint64_t key = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(lb->ChooseHost({{}, StableHash(std::to_string(++key % 1024))}));
  }
}

BENCHMARK_CAPTURE(BM_Pick, round_robin, "round_robin")->Arg(3)->Arg(100)->Arg(1000);
BENCHMARK_CAPTURE(BM_Pick, weighted_round_robin, "weighted_round_robin")
    ->Arg(3)
    ->Arg(100)
    ->Arg(1000);
BENCHMARK_CAPTURE(BM_Pick, random, "random")->Arg(3)->Arg(100)->Arg(1000);
BENCHMARK_CAPTURE(BM_Pick, least_connections, "least_connections")->Arg(3)->Arg(100)->Arg(1000);
BENCHMARK_CAPTURE(BM_Pick, p2c, "p2c")->Arg(3)->Arg(100)->Arg(1000);
BENCHMARK_CAPTURE(BM_Pick, maglev, "maglev")->Arg(3)->Arg(100)->Arg(1000);

}  // namespace
}  // namespace confgate::upstream

BENCHMARK_MAIN();
