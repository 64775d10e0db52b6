// DNS discovery for `dns: NAME:PORT` servers: each name is resolved with libevent's evdns on
// the main thread (never blocking a worker) every dns_refresh of its upstream. A changed
// address set is handed to `on_change`, which rebuilds the snapshot like a reload; a failed
// resolution keeps the last good set.
#pragma once

#include <netdb.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "confgate/config/config.h"
#include "confgate/event/dispatcher.h"
#include "confgate/upstream/host.h"

struct evdns_base;

namespace confgate::server {

class DnsRefresher {
 public:
  DnsRefresher(event::Dispatcher& dispatcher, std::function<void()> on_change);
  ~DnsRefresher();

  // The names to keep resolved, from the running config (called at start and on reload).
  // `initial` seeds the last good sets (what the start-up resolution found).
  void Watch(const config::Config& config, const upstream::DnsResults& initial);
  const upstream::DnsResults& results() const { return results_; }

 private:
  struct Target {
    DnsRefresher* owner = nullptr;
    config::SocketAddress address;
    std::string key;  // "name:port"
    absl::Duration every;
    event::TimerPtr timer;
    bool in_flight = false;
  };
  void Resolve(Target& target);
  void OrphanTargets();
  static void OnResolved(int result, struct addrinfo* addresses, void* arg);

  event::Dispatcher& dispatcher_;
  std::function<void()> on_change_;
  evdns_base* dns_ = nullptr;
  std::vector<std::unique_ptr<Target>> targets_;
  upstream::DnsResults results_;
};

}  // namespace confgate::server
