// The admin listener (design.md "Admin listener"): metrics, health, status, config, reload,
// host drain/enable and the read-only override. It runs on the main thread's event loop;
// what it shows and changes comes from an AdminBackend.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "confgate/config/config.h"

struct event_base;
struct evhttp;
struct evhttp_request;

namespace confgate::admin {

struct AdminReply {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
};

// Takes the reply to one admin call; called exactly once, at once or later (POST /reload answers
// when the reload is done). Main thread.
using AdminResponder = std::function<void(AdminReply)>;

class AdminBackend {
 public:
  virtual ~AdminBackend() = default;
  virtual std::string Metrics() = 0;
  virtual bool Ready() = 0;
  virtual std::string StatusJson() = 0;
  virtual std::string ConfigJson() = 0;
  // Reloads the upstream file and answers with the result once the reload is done: the file is
  // parsed off the main thread, so the answer may come after other admin calls are served.
  virtual void Reload(AdminResponder respond) = 0;
  virtual AdminReply SetHostDrained(const std::string& upstream, const std::string& address,
                                    bool drained) = 0;
  virtual AdminReply SetReadOnly(const std::string& upstream, std::optional<bool> read_only) = 0;
};

// A request as the router sees it.
struct AdminRequest {
  std::string method;
  std::string path;
  std::string body;
  bool peer_is_loopback = false;
  std::string authorization;  // the Authorization header, if any
  std::string origin;         // the Origin header, if any (browsers send it on every POST)
};

// Routing and access control, without sockets. Mutating calls need `Bearer <token>` when a
// token is configured (401 otherwise); without a token they are refused (403) from peers that
// are not on loopback. Mutating calls that carry an Origin header come from a web page (a
// cross-site form or a DNS-rebound name aimed at 127.0.0.1) and are refused (403) either way.
// `respond` gets the reply (later for POST /reload).
void HandleAdminRequest(const AdminRequest& request, const std::string& token,
                        AdminBackend& backend, AdminResponder respond);

// Compares in time independent of where the inputs differ.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

// The largest admin token file read (fixed): a token is a line, and a bound keeps a file that
// never ends (a FIFO, /dev/zero) from holding start-up.
constexpr uint64_t kMaxAdminTokenFileBytes = 4096;

// The bearer token from `token_file`, without surrounding whitespace. An unreadable or empty
// file, one that is not a regular file or one over kMaxAdminTokenFileBytes is an error that
// names admin.token_file (start-up and --check report it alike), at once.
absl::StatusOr<std::string> ReadAdminToken(const std::string& token_file);

class AdminServer {
 public:
  // Reads the token file (if any) and binds the listener. Main thread.
  static absl::StatusOr<std::unique_ptr<AdminServer>> Start(event_base* base,
                                                            const config::AdminConfig& config,
                                                            AdminBackend& backend);
  ~AdminServer();

  // "127.0.0.1:9901", with the real port for port 0.
  const std::string& address() const { return address_; }
  // True when the listener is bound to a loopback address (127.0.0.0/8 or ::1), so only this
  // host can reach it.
  bool loopback_only() const { return loopback_only_; }

 private:
  AdminServer(AdminBackend& backend, std::string token) : backend_(backend), token_(token) {}
  static void OnRequest(::evhttp_request* request, void* arg);
  static void SendReply(::evhttp_request* request, const AdminReply& reply);

  AdminBackend& backend_;
  std::string token_;
  evhttp* http_ = nullptr;
  std::string address_;
  bool loopback_only_ = false;
  // Replies that come later (POST /reload) check it: once the server is gone, evhttp has freed
  // their requests with their connections.
  std::shared_ptr<char> alive_ = std::make_shared<char>(0);
};

}  // namespace confgate::admin
