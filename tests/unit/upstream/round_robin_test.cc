#include <arpa/inet.h>
#include <netinet/in.h>

#include <map>

#include "confgate/upstream/load_balancer.h"
#include "gtest/gtest.h"

namespace confgate::upstream {
namespace {

HostSharedPtr MakeHost(uint16_t port, bool backup = false) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return std::make_shared<Host>("config-service", "127.0.0.1:" + std::to_string(port),
                                reinterpret_cast<sockaddr*>(&addr), sizeof(addr), 1, backup);
}

TEST(RoundRobin, RotatesEvenlyOverPrimaries) {
  std::vector<HostSharedPtr> hosts{MakeHost(1), MakeHost(2), MakeHost(3), MakeHost(4, true)};
  RoundRobinLoadBalancer lb(hosts);
  std::map<std::string, int> counts;
  for (int i = 0; i < 300; ++i) {
    Host* host = lb.ChooseHost(nullptr);
    ASSERT_NE(host, nullptr);
    ++counts[host->address()];
  }
  EXPECT_EQ(counts.size(), 3u);  // the backup gets nothing while primaries exist
  for (const auto& [address, count] : counts) {
    EXPECT_EQ(count, 100) << address;
  }
}

TEST(RoundRobin, ConsecutivePicksDiffer) {
  std::vector<HostSharedPtr> hosts{MakeHost(1), MakeHost(2)};
  RoundRobinLoadBalancer lb(hosts);
  Host* first = lb.ChooseHost(nullptr);
  Host* second = lb.ChooseHost(nullptr);
  EXPECT_NE(first, second);
}

TEST(RoundRobin, ExcludeSkipsTheTriedHostWhenAnotherExists) {
  std::vector<HostSharedPtr> hosts{MakeHost(1), MakeHost(2)};
  RoundRobinLoadBalancer lb(hosts);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(lb.ChooseHost(hosts[0].get()), hosts[1].get());
  }
  std::vector<HostSharedPtr> single{MakeHost(1)};
  RoundRobinLoadBalancer single_lb(single);
  EXPECT_EQ(single_lb.ChooseHost(single[0].get()), single[0].get());
}

TEST(RoundRobin, BackupsServeWhenThereAreNoPrimaries) {
  std::vector<HostSharedPtr> hosts{MakeHost(5, true)};
  RoundRobinLoadBalancer lb(hosts);
  EXPECT_EQ(lb.ChooseHost(nullptr), hosts[0].get());
  RoundRobinLoadBalancer empty({});
  EXPECT_EQ(empty.ChooseHost(nullptr), nullptr);
}

}  // namespace
}  // namespace confgate::upstream
