#include "server/dns_refresher.h"

#include <arpa/inet.h>
#include <event2/dns.h>
#include <event2/util.h>
#include <netinet/in.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "confgate/common/log.h"

namespace confgate::server {

DnsRefresher::DnsRefresher(event::Dispatcher& dispatcher, std::function<void()> on_change,
                           Resolver resolver)
    : dispatcher_(dispatcher), on_change_(std::move(on_change)), resolver_(std::move(resolver)) {}

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
      std::string key = upstream::NameKey(server);
      if (key.empty() || kept.contains(key)) {
        continue;
      }
      auto last = results_.find(key);
      auto seeded = initial.find(key);
      std::vector<std::string>& addresses = kept[key];
      addresses = last != results_.end() && !last->second.empty() ? last->second
                  : seeded != initial.end()                       ? seeded->second
                                                                  : std::vector<std::string>{};
      bool until_resolved = server.dns.empty();
      if (until_resolved && !addresses.empty()) {
        continue;  // an `address:` name that resolved: resolved once, as documented
      }
      auto target = std::make_unique<Target>();
      target->owner = this;
      target->address = server.address;
      target->key = key;
      target->every = upstream.dns_refresh;
      target->until_resolved = until_resolved;
      Target* raw = target.get();
      target->timer = dispatcher_.CreateTimer([this, raw] { Resolve(*raw); });
      target->timer->Enable(target->every);
      targets_.push_back(std::move(target));
    }
  }
  results_ = std::move(kept);
  if (!targets_.empty() && dns_ == nullptr && resolver_ == nullptr) {
    dns_ = evdns_base_new(dispatcher_.base(),
                          EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (dns_ == nullptr) {
      Log(LogLevel::kWarn, "cannot start the DNS resolver; dns: servers keep their addresses");
    }
  }
}

void DnsRefresher::RefreshNow() {
  // Resolve() may end in on_change_ and a Watch() that replaces targets_: walk a copy.
  std::vector<Target*> targets;
  for (const std::unique_ptr<Target>& target : targets_) {
    targets.push_back(target.get());
  }
  for (size_t i = 0; i < targets.size() && i < targets_.size(); ++i) {
    if (targets_[i].get() == targets[i]) {
      Resolve(*targets[i]);
    }
  }
}

void DnsRefresher::OrphanTargets() {
  // A target whose answer is still on its way must outlive it: OnAnswer frees it (also when
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
  auto known = results_.find(target.key);
  if (target.until_resolved && known != results_.end() && !known->second.empty()) {
    return;  // resolved once
  }
  if ((dns_ == nullptr && resolver_ == nullptr) || target.in_flight) {
    target.timer->Enable(target.every);
    return;
  }
  target.in_flight = true;
  Target* raw = &target;
  Answer done = [raw](absl::StatusOr<std::vector<std::string>> answer) {
    OnAnswer(raw, std::move(answer));
  };
  if (resolver_ != nullptr) {
    resolver_(target.address, std::move(done));
  } else {
    ResolveWithEvdns(target.address, std::move(done));
  }
}

void DnsRefresher::ResolveWithEvdns(const config::SocketAddress& address, Answer done) {
  evutil_addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  // Read the hosts file afresh each round, so a changed /etc/hosts entry is seen like a
  // changed DNS record.
  evdns_base_clear_host_addresses(dns_);
  evdns_base_load_hosts(dns_, "/etc/hosts");
  std::string port = absl::StrCat(address.port);
  evdns_getaddrinfo(dns_, address.host.c_str(), port.c_str(), &hints, &DnsRefresher::OnResolved,
                    new Answer(std::move(done)));
}

void DnsRefresher::OnResolved(int result, addrinfo* addresses, void* arg) {
  std::unique_ptr<Answer> done(static_cast<Answer*>(arg));
  if (result != 0 || addresses == nullptr) {
    if (addresses != nullptr) {
      evutil_freeaddrinfo(addresses);
    }
    (*done)(absl::UnavailableError(evutil_gai_strerror(result)));
    return;
  }
  std::vector<std::string> found;
  for (evutil_addrinfo* entry = addresses; entry != nullptr; entry = entry->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* raw =
        entry->ai_family == AF_INET6
            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(entry->ai_addr)->sin6_addr)
            : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(entry->ai_addr)->sin_addr);
    evutil_inet_ntop(entry->ai_family, raw, text, sizeof(text));
    found.emplace_back(text);
  }
  evutil_freeaddrinfo(addresses);
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  (*done)(std::move(found));
}

void DnsRefresher::OnAnswer(Target* target, absl::StatusOr<std::vector<std::string>> answer) {
  target->in_flight = false;
  DnsRefresher* self = target->owner;
  if (self == nullptr) {
    delete target;  // a reload replaced this target while the answer was on its way
    return;
  }
  bool done = false;
  if (!answer.ok() || answer->empty()) {
    Log(LogLevel::kWarn, "DNS resolution failed; keeping the last good addresses",
        {{"name", target->key},
         {"error", answer.ok() ? "no addresses" : std::string(answer.status().message())}});
  } else {
    std::vector<std::string>& current = self->results_[target->key];
    done = target->until_resolved;
    if (*answer != current) {
      Log(current.empty() ? LogLevel::kWarn : LogLevel::kInfo,
          current.empty() ? "DNS name resolved; its hosts join the upstream"
                          : "DNS addresses changed",
          {{"name", target->key}, {"addresses", absl::StrCat(answer->size())}});
      current = *std::move(answer);
      // May call Watch(), which replaces (and frees) this target: nothing after this.
      if (target->timer != nullptr && !done) {
        target->timer->Enable(target->every);
      }
      self->on_change_();
      return;
    }
  }
  if (target->timer != nullptr && !done) {
    target->timer->Enable(target->every);
  }
}

}  // namespace confgate::server
