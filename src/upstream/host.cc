#include "confgate/upstream/host.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"

namespace confgate::upstream {

Host::Host(std::string upstream, std::string address, const sockaddr* addr, socklen_t addr_len,
           uint32_t weight, bool backup, HostStateSharedPtr state)
    : state_(state != nullptr ? std::move(state) : std::make_shared<HostState>()),
      weight_(weight),
      backup_(backup),
      addr_len_(addr_len),
      upstream_(std::move(upstream)),
      address_(std::move(address)) {
  std::memcpy(&addr_, addr, std::min<size_t>(addr_len, sizeof(addr_)));
}

std::string Host::host_name() const {
  std::string name = address_.substr(0, address_.rfind(':'));
  if (name.size() >= 2 && name.front() == '[' && name.back() == ']') {
    name = name.substr(1, name.size() - 2);
  }
  return name;
}

const char* EjectionReasonName(EjectionReason reason) {
  switch (reason) {
    case EjectionReason::kConsecutive5xx:
      return "consecutive_5xx";
    case EjectionReason::kConsecutiveGatewayFailures:
      return "consecutive_gateway_failures";
    case EjectionReason::kTrialFailed:
      return "trial_failed";
  }
  return "unknown";
}

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kSuccess:
      return "success";
    case Outcome::kServerError:
      return "server_error";
    case Outcome::kGatewayFailure:
      return "gateway_failure";
    case Outcome::kNeutral:
      return "neutral";
  }
  return "unknown";
}

Cluster::Cluster(const config::UpstreamConfig& config, std::vector<HostSharedPtr> hosts,
                 std::shared_ptr<ClusterStats> stats)
    : config_(config),
      hosts_(std::move(hosts)),
      stats_(stats != nullptr ? std::move(stats) : std::make_shared<ClusterStats>()) {}

bool Cluster::RetryBudgetAllows() const {
  constexpr uint32_t kMinConcurrentRetries = 3;
  uint32_t active = active_requests_.load(std::memory_order_relaxed);
  uint32_t retries = active_retries_.load(std::memory_order_relaxed);
  uint32_t budget = active * config_.retries.budget_percent / 100;
  return retries < std::max(budget, kMinConcurrentRetries);
}

absl::StatusOr<std::vector<ClusterSharedPtr>> BuildClusters(const config::Config& config) {
  return BuildClusters(config, {}, {});
}

absl::StatusOr<std::vector<ClusterSharedPtr>> BuildClusters(
    const config::Config& config, const std::vector<ClusterSharedPtr>& previous) {
  return BuildClusters(config, previous, {});
}

namespace {

using AddrInfoPtr = std::unique_ptr<addrinfo, decltype(&freeaddrinfo)>;

// getaddrinfo for a TCP address (blocking; main thread only). The error says what failed.
absl::StatusOr<AddrInfoPtr> Lookup(const config::SocketAddress& address) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  std::string port = absl::StrCat(address.port);
  int rc = getaddrinfo(address.host.c_str(), port.c_str(), &hints, &result);
  if (rc != 0 || result == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot resolve \"", address.host, "\": ", gai_strerror(rc)));
  }
  return AddrInfoPtr(result, &freeaddrinfo);
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ResolveNow(const config::SocketAddress& address) {
  absl::StatusOr<AddrInfoPtr> result = Lookup(address);
  if (!result.ok()) {
    return result.status();
  }
  std::vector<std::string> addresses;
  for (addrinfo* entry = result->get(); entry != nullptr; entry = entry->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* raw =
        entry->ai_family == AF_INET6
            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(entry->ai_addr)->sin6_addr)
            : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(entry->ai_addr)->sin_addr);
    inet_ntop(entry->ai_family, raw, text, sizeof(text));
    addresses.emplace_back(text);
  }
  std::sort(addresses.begin(), addresses.end());
  addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
  return addresses;
}

namespace {

// The Host named `name` in `upstream`, connecting to the numeric `address`: the previous one
// when nothing about it changed; a new Host over the previous one's state when only its weight
// or backup flag did (state belongs to the address, design.md "Signals and lifecycle").
absl::StatusOr<HostSharedPtr> MakeHost(const std::string& upstream, const std::string& name,
                                       const config::SocketAddress& address, uint32_t weight,
                                       bool backup, int line,
                                       const std::vector<ClusterSharedPtr>& previous) {
  for (const ClusterSharedPtr& old_cluster : previous) {
    if (old_cluster->name() != upstream) {
      continue;
    }
    for (const HostSharedPtr& old_host : old_cluster->hosts()) {
      if (old_host->address() != name) {
        continue;
      }
      if (old_host->weight() == weight && old_host->backup() == backup) {
        return old_host;
      }
      return std::make_shared<Host>(upstream, name, old_host->sockaddr_ptr(),
                                    old_host->sockaddr_len(), weight, backup,
                                    old_host->shared_state());
    }
  }
  absl::StatusOr<AddrInfoPtr> result = Lookup(address);
  if (!result.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("upstreams.", upstream, ": line ", line, ": ", result.status().message()));
  }
  return std::make_shared<Host>(upstream, name, (*result)->ai_addr, (*result)->ai_addrlen, weight,
                                backup);
}

bool IsIpLiteral(const std::string& host) {
  in6_addr raw;
  return inet_pton(AF_INET, host.c_str(), &raw) == 1 ||
         inet_pton(AF_INET6, host.c_str(), &raw) == 1;
}

}  // namespace

std::string NameKey(const config::ServerConfig& server) {
  if (!server.dns.empty()) {
    return server.dns;
  }
  return IsIpLiteral(server.address.host) ? "" : server.address.ToString();
}

absl::StatusOr<std::vector<ClusterSharedPtr>> BuildClusters(
    const config::Config& config, const std::vector<ClusterSharedPtr>& previous,
    const DnsResults& dns) {
  std::vector<ClusterSharedPtr> clusters;
  for (const config::UpstreamConfig& upstream : config.upstreams) {
    std::vector<HostSharedPtr> hosts;
    for (const config::ServerConfig& server : upstream.servers) {
      std::string key = NameKey(server);
      std::vector<std::string> ips;
      if (key.empty()) {
        ips.push_back(server.address.host);
      } else if (auto known = dns.find(key); known != dns.end()) {
        ips = known->second;
      } else if (absl::StatusOr<std::vector<std::string>> resolved = ResolveNow(server.address);
                 resolved.ok()) {
        ips = *std::move(resolved);
      }  // else: no host for now; the DNS refresh keeps trying until the name resolves
      // An `address:` name is one host, labelled with the name, at its first address.
      if (server.dns.empty() && ips.size() > 1) {
        ips.resize(1);
      }
      for (const std::string& ip : ips) {
        config::SocketAddress address{ip, server.address.port};
        std::string name = server.dns.empty() ? server.address.ToString() : address.ToString();
        absl::StatusOr<HostSharedPtr> host = MakeHost(upstream.name, name, address, server.weight,
                                                      server.backup, server.line, previous);
        if (!host.ok()) {
          return host.status();
        }
        hosts.push_back(*std::move(host));
      }
    }
    std::shared_ptr<ClusterStats> stats;
    for (const ClusterSharedPtr& old_cluster : previous) {
      if (old_cluster->name() == upstream.name) {
        stats = old_cluster->shared_stats();
      }
    }
    clusters.push_back(
        std::make_shared<const Cluster>(upstream, std::move(hosts), std::move(stats)));
  }
  return clusters;
}

}  // namespace confgate::upstream
