// DNS discovery for `dns: NAME:PORT` servers: each name is resolved with libevent's evdns on
// the main thread (never blocking a worker) every dns_refresh of its upstream. A changed
// address set is handed to `on_change`, which rebuilds the snapshot like a reload; a failed
// resolution keeps the last good set. An `address: NAME:PORT` that did not resolve at start-up
// or reload is retried the same way until it resolves (then it is resolved, as designed, once).
#pragma once

#include <netdb.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "confgate/config/config.h"
#include "confgate/event/dispatcher.h"
#include "confgate/upstream/host.h"

struct evdns_base;

namespace confgate::server {

class DnsRefresher {
 public:
  // Looks `address` up and calls `done` with its numeric addresses (sorted, unique), later or
  // at once, on the dispatcher's thread.
  using Answer = std::function<void(absl::StatusOr<std::vector<std::string>>)>;
  using Resolver = std::function<void(const config::SocketAddress& address, Answer done)>;

  // Without a resolver, evdns is used (a test passes its own).
  DnsRefresher(event::Dispatcher& dispatcher, std::function<void()> on_change,
               Resolver resolver = nullptr);
  ~DnsRefresher();

  // The names to keep resolved, from the running config (called at start and on reload).
  // `initial` seeds the last good sets (what the start-up resolution found).
  void Watch(const config::Config& config, const upstream::DnsResults& initial);
  const upstream::DnsResults& results() const { return results_; }
  // Resolves every watched name now, as its timer would (tests).
  void RefreshNow();

 private:
  struct Target {
    DnsRefresher* owner = nullptr;
    config::SocketAddress address;
    std::string key;  // "name:port"
    absl::Duration every;
    event::TimerPtr timer;
    bool in_flight = false;
    bool until_resolved = false;  // an `address:` name: no more lookups once it resolves
  };
  void Resolve(Target& target);
  void ResolveWithEvdns(const config::SocketAddress& address, Answer done);
  void OrphanTargets();
  static void OnAnswer(Target* target, absl::StatusOr<std::vector<std::string>> answer);
  static void OnResolved(int result, struct addrinfo* addresses, void* arg);

  event::Dispatcher& dispatcher_;
  std::function<void()> on_change_;
  Resolver resolver_;
  evdns_base* dns_ = nullptr;
  std::vector<std::unique_ptr<Target>> targets_;
  upstream::DnsResults results_;
};

}  // namespace confgate::server
