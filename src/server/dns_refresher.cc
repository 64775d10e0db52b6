#include "server/dns_refresher.h"

#include <arpa/inet.h>
#include <event2/dns.h>
#include <event2/util.h>
#include <netinet/in.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "confgate/common/log.h"

namespace confgate::server {

DnsRefresher::DnsRefresher(event::Dispatcher& dispatcher, std::function<void()> on_change)
    : dispatcher_(dispatcher), on_change_(std::move(on_change)) {}

DnsRefresher::~DnsRefresher() {
  OrphanTargets();
  if (dns_ != nullptr) {
    evdns_base_free(dns_, /*fail_requests=*/1);
  }
}

void DnsRefresher::Watch(const config::Config& config, const upstream::DnsResults& initial) {
  OrphanTargets();
  upstream::DnsResults kept;
  for (const config::UpstreamConfig& upstream : config.upstreams) {
    for (const config::ServerConfig& server : upstream.servers) {
      if (server.dns.empty()) {
        continue;
      }
      auto last = results_.find(server.dns);
      auto seeded = initial.find(server.dns);
      kept[server.dns] = last != results_.end()    ? last->second
                         : seeded != initial.end() ? seeded->second
                                                   : std::vector<std::string>{};
      auto target = std::make_unique<Target>();
      target->owner = this;
      target->address = server.address;
      target->key = server.dns;
      target->every = upstream.dns_refresh;
      Target* raw = target.get();
      target->timer = dispatcher_.CreateTimer([this, raw] { Resolve(*raw); });
      target->timer->Enable(target->every);
      targets_.push_back(std::move(target));
    }
  }
  results_ = std::move(kept);
  if (!targets_.empty() && dns_ == nullptr) {
    dns_ = evdns_base_new(dispatcher_.base(),
                          EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (dns_ == nullptr) {
      Log(LogLevel::kWarn, "cannot start the DNS resolver; dns: servers keep their addresses");
    }
  }
}

void DnsRefresher::OrphanTargets() {
  // A target whose answer is still on its way must outlive it: OnResolved frees it (also when
  // evdns_base_free fails the pending requests).
  for (std::unique_ptr<Target>& target : targets_) {
    if (target->in_flight) {
      target->owner = nullptr;
      target->timer.reset();
      (void)target.release();
    }
  }
  targets_.clear();
}

void DnsRefresher::Resolve(Target& target) {
  if (dns_ == nullptr || target.in_flight) {
    target.timer->Enable(target.every);
    return;
  }
  evutil_addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  // Read the hosts file afresh each round, so a changed /etc/hosts entry is seen like a
  // changed DNS record.
  evdns_base_clear_host_addresses(dns_);
  evdns_base_load_hosts(dns_, "/etc/hosts");
  target.in_flight = true;
  std::string port = absl::StrCat(target.address.port);
  evdns_getaddrinfo(dns_, target.address.host.c_str(), port.c_str(), &hints,
                    &DnsRefresher::OnResolved, &target);
}

void DnsRefresher::OnResolved(int result, addrinfo* addresses, void* arg) {
  auto* target = static_cast<Target*>(arg);
  target->in_flight = false;
  DnsRefresher* self = target->owner;
  if (self == nullptr) {
    // A reload replaced this target while the answer was on its way.
    if (addresses != nullptr) {
      evutil_freeaddrinfo(addresses);
    }
    delete target;
    return;
  }
  if (result != 0 || addresses == nullptr) {
    Log(LogLevel::kWarn, "DNS resolution failed; keeping the last good addresses",
        {{"name", target->key}, {"error", evutil_gai_strerror(result)}});
  } else {
    std::vector<std::string> found;
    for (evutil_addrinfo* entry = addresses; entry != nullptr; entry = entry->ai_next) {
      char text[INET6_ADDRSTRLEN] = {};
      const void* raw =
          entry->ai_family == AF_INET6
              ? static_cast<const void*>(
                    &reinterpret_cast<sockaddr_in6*>(entry->ai_addr)->sin6_addr)
              : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(entry->ai_addr)->sin_addr);
      evutil_inet_ntop(entry->ai_family, raw, text, sizeof(text));
      found.emplace_back(text);
    }
    evutil_freeaddrinfo(addresses);
    std::sort(found.begin(), found.end());
    found.erase(std::unique(found.begin(), found.end()), found.end());
    std::vector<std::string>& current = self->results_[target->key];
    if (found != current) {
      Log(LogLevel::kInfo, "DNS addresses changed",
          {{"name", target->key}, {"addresses", absl::StrCat(found.size())}});
      current = std::move(found);
      self->on_change_();
    }
  }
  if (target->timer != nullptr) {
    target->timer->Enable(target->every);
  }
}

}  // namespace confgate::server
