// TLS contexts (OpenSSL 3): a listener's server side with SNI, and an upstream's client side
// with verification. Built on the main thread at start-up and reload; a bad file is an error
// that names the field and says why.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "confgate/common/mutex.h"
#include "confgate/config/config.h"
#include "confgate/config/loader.h"

struct ssl_ctx_st;
struct ssl_st;

namespace confgate::network {

class ServerTls {
 public:
  // `field_path` names the listener's tls field in errors ("listeners[0].tls").
  static absl::StatusOr<std::shared_ptr<ServerTls>> Create(const config::ListenerTlsConfig& config,
                                                           const std::string& field_path);
  ~ServerTls();
  ServerTls(const ServerTls&) = delete;
  ServerTls& operator=(const ServerTls&) = delete;

  // A new server-side session for an accepted connection (SNI switches its context).
  ssl_st* NewSession() const;

 private:
  struct Certificate {
    ssl_ctx_st* context = nullptr;
    std::vector<std::string> names;
  };
  ServerTls() = default;
  static int OnServerName(ssl_st* ssl, int* alert, void* arg);
  const Certificate* Select(const std::string& server_name) const;

  std::vector<Certificate> certificates_;  // [0] is the default
};

class ClientTls {
 public:
  static absl::StatusOr<std::shared_ptr<ClientTls>> Create(const config::UpstreamTlsConfig& config,
                                                           const std::string& field_path);
  ~ClientTls();
  ClientTls(const ClientTls&) = delete;
  ClientTls& operator=(const ClientTls&) = delete;

  // A new client session to `host` (a name or an IP literal): SNI and verification use the
  // configured server_name, else `host`.
  ssl_st* NewSession(const std::string& host) const;

 private:
  ClientTls() = default;
  ssl_ctx_st* context_ = nullptr;
  std::string server_name_;
  bool verify_ = true;
};

// Session-ticket keys shared by every TLS listener of the process (so tickets survive a
// certificate reload). New tickets are sealed with the current key; tickets sealed with the
// previous key are still accepted (and renewed), older ones get a full handshake.
class TicketKeys {
 public:
  static constexpr size_t kNameBytes = 16;
  static TicketKeys& Process();
  // Makes a new current key; the current one becomes the previous one. Thread-safe.
  void Rotate();
  std::string current_name() const;
  // Whether a ticket named `name` can still be opened (current or previous key).
  bool Knows(const std::string& name) const;

 private:
  friend struct TicketCallback;
  struct Key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
  };
  TicketKeys();
  mutable Mutex mu_;
  Key current_ ABSL_GUARDED_BY(mu_);
  Key previous_ ABSL_GUARDED_BY(mu_);
  bool has_previous_ ABSL_GUARDED_BY(mu_) = false;
};

// How often the main thread rotates the ticket keys.
inline constexpr absl::Duration kTicketKeyRotation = absl::Hours(12);

// Every TLS problem of the file, for --check and start-up: unreadable files, PEM errors, a key
// that does not match its certificate, expired or not yet valid certificates.
std::vector<config::ConfigError> CheckTlsFiles(const config::Config& config);

}  // namespace confgate::network
