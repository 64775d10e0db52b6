#include "confgate/admin/admin_server.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "confgate/common/file.h"
#include "confgate/common/log.h"

namespace confgate::admin {
namespace {

AdminReply Json(int status, std::string body) {
  return AdminReply{status, "application/json", body};
}

AdminReply Error(int status, absl::string_view message) {
  std::string body = "{\"error\":";
  AppendJsonString(message, body);
  body.append("}\n");
  return Json(status, std::move(body));
}

// The body of POST /upstreams/{u}/mode: exactly {"read_only": true|false|null}, an object
// with that one key (once). nlohmann's non-throwing parse refuses malformed JSON (bad
// literals, unterminated objects, trailing bytes); the callback counts the keys, since a
// repeated key would otherwise silently keep its last value.
absl::StatusOr<std::optional<bool>> ParseModeBody(const std::string& body) {
  // nlohmann's lexer takes a NUL for the end of its input: what follows one would be ignored.
  if (body.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("the body is not valid JSON");
  }
  int keys = 0;
  nlohmann::json::parser_callback_t count_keys =
      [&keys](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
        if (depth == 1 && event == nlohmann::json::parse_event_t::key) {
          ++keys;
        }
        return true;
      };
  nlohmann::json json = nlohmann::json::parse(body, count_keys, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError("the body is not valid JSON");
  }
  auto value = json.is_object() ? json.find("read_only") : json.end();
  if (!json.is_object() || keys != 1 || value == json.end()) {
    return absl::InvalidArgumentError("the body must be an object with the one key \"read_only\"");
  }
  if (value->is_null()) {
    return std::optional<bool>();
  }
  if (!value->is_boolean()) {
    return absl::InvalidArgumentError("read_only must be true, false or null");
  }
  return std::optional<bool>(value->get<bool>());
}

// Admin calls are a request line and a few headers; evhttp answers a larger head with 400.
constexpr size_t kMaxAdminHeaderBytes = 16 * 1024;
// evhttp sets no timeout of its own: a connection that stays silent (idle, or in the middle of
// a head) would be held for ever, and enough of them take the descriptors the data plane
// needs. Admin calls are short, and a scraper simply reconnects.
constexpr int kAdminTimeoutSeconds = 10;

// A connection's socket, closed by its bufferevent once libevent has deleted the socket's
// events. evhttp's own bufferevent leaves the close to evhttp_connection_free, which runs inside
// the bufferevent's callbacks (after a reply with "Connection: close", say): the socket was
// closed there while its read event was still registered, and libevent's epoll_ctl(DEL) for it
// came once the callback returned, on a number that a worker thread may have been given for an
// upstream socket in between.
bufferevent* NewConnectionBuffer(event_base* base, void*) {
  return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
}

bool IsLoopback(const sockaddr_storage& addr) {
  if (addr.ss_family == AF_INET) {
    uint32_t ip = ntohl(reinterpret_cast<const sockaddr_in*>(&addr)->sin_addr.s_addr);
    return (ip >> 24) == 127;
  }
  if (addr.ss_family == AF_INET6) {
    const in6_addr& ip = reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(&ip) || (IN6_IS_ADDR_V4MAPPED(&ip) && ip.s6_addr[12] == 127);
  }
  return false;
}

}  // namespace

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  unsigned char difference = a.size() == b.size() ? 0 : 1;
  size_t length = std::max(a.size(), b.size());
  for (size_t i = 0; i < length; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    difference |= x ^ y;
  }
  return difference == 0;
}

namespace {

// Every call but POST /reload, answered at once; nullopt for POST /reload (answered later).
std::optional<AdminReply> Route(const AdminRequest& request, const std::string& token,
                                AdminBackend& backend) {
  const std::string& path = request.path;
  if (request.method == "GET") {
    if (path == "/metrics") {
      return AdminReply{200, "text/plain; version=0.0.4", backend.Metrics()};
    }
    if (path == "/healthz") {
      return AdminReply{200, "text/plain", "ok\n"};
    }
    if (path == "/readyz") {
      return backend.Ready() ? AdminReply{200, "text/plain", "ready\n"}
                             : AdminReply{503, "text/plain", "not ready\n"};
    }
    if (path == "/status") {
      return Json(200, backend.StatusJson());
    }
    if (path == "/config") {
      return Json(200, backend.ConfigJson());
    }
    return Error(404, "no such admin endpoint");
  }
  if (request.method != "POST") {
    return Error(405, "admin endpoints take GET or POST");
  }
  // Everything below changes the running proxy.
  if (!request.origin.empty()) {
    // Loopback is no boundary for a browser on this host: any page it shows may POST here.
    return Error(403, "mutating admin calls are not taken from web pages");
  }
  if (!token.empty()) {
    absl::string_view presented = request.authorization;
    if (!absl::ConsumePrefix(&presented, "Bearer ") || !ConstantTimeEquals(presented, token)) {
      return Error(401, "a valid bearer token is required");
    }
  } else if (!request.peer_is_loopback) {
    return Error(403, "mutating admin calls from other hosts need admin.token_file");
  }
  if (path == "/reload") {
    return std::nullopt;
  }
  // /upstreams/{u}/hosts/{addr}/drain|enable and /upstreams/{u}/mode
  std::vector<std::string> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  if (parts.size() == 5 && parts[0] == "upstreams" && parts[2] == "hosts" &&
      (parts[4] == "drain" || parts[4] == "enable")) {
    return backend.SetHostDrained(parts[1], parts[3], parts[4] == "drain");
  }
  if (parts.size() == 3 && parts[0] == "upstreams" && parts[2] == "mode") {
    absl::StatusOr<std::optional<bool>> read_only = ParseModeBody(request.body);
    if (!read_only.ok()) {
      return Error(400, absl::StrCat(read_only.status().message(),
                                     "; send {\"read_only\": true|false|null}"));
    }
    return backend.SetReadOnly(parts[1], *read_only);
  }
  return Error(404, "no such admin endpoint");
}

}  // namespace

void HandleAdminRequest(const AdminRequest& request, const std::string& token,
                        AdminBackend& backend, AdminResponder respond) {
  std::optional<AdminReply> reply = Route(request, token, backend);
  if (reply.has_value()) {
    respond(*std::move(reply));
  } else {
    backend.Reload(std::move(respond));
  }
}

absl::StatusOr<std::string> ReadAdminToken(const std::string& token_file) {
  absl::StatusOr<std::string> text = ReadRegularFile(token_file, kMaxAdminTokenFileBytes);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        absl::StrCat("admin.token_file: ", text.status().message()));
  }
  std::string token(absl::StripAsciiWhitespace(*text));
  if (token.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("admin.token_file: ", Shortened(token_file, 200), " is empty"));
  }
  return token;
}

absl::StatusOr<std::unique_ptr<AdminServer>> AdminServer::Start(event_base* base,
                                                                const config::AdminConfig& config,
                                                                AdminBackend& backend) {
  std::string token;
  if (!config.token_file.empty()) {
    absl::StatusOr<std::string> read = ReadAdminToken(config.token_file);
    if (!read.ok()) {
      return read.status();
    }
    token = *std::move(read);
  }
  std::unique_ptr<AdminServer> server(new AdminServer(backend, token));
  server->http_ = evhttp_new(base);
  evhttp_set_allowed_methods(server->http_, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
  evhttp_set_max_body_size(server->http_, 64 * 1024);
  // evhttp reads request heads of any size by default; admin calls need a few hundred bytes.
  evhttp_set_max_headers_size(server->http_, kMaxAdminHeaderBytes);
  evhttp_set_timeout(server->http_, kAdminTimeoutSeconds);
  evhttp_set_gencb(server->http_, &AdminServer::OnRequest, server.get());
  evhttp_set_bevcb(server->http_, &NewConnectionBuffer, nullptr);
  evhttp_bound_socket* bound = evhttp_bind_socket_with_handle(
      server->http_, config.address.host.c_str(), config.address.port);
  if (bound == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on admin address ", config.address.ToString()));
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  getsockname(evhttp_bound_socket_get_fd(bound), reinterpret_cast<sockaddr*>(&addr), &len);
  uint16_t port = addr.ss_family == AF_INET6
                      ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                      : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  config::SocketAddress actual = config.address;
  actual.port = port;
  server->address_ = actual.ToString();
  server->loopback_only_ = IsLoopback(addr);
  return server;
}

AdminServer::~AdminServer() {
  alive_.reset();
  if (http_ != nullptr) {
    evhttp_free(http_);
  }
}

void AdminServer::OnRequest(evhttp_request* request, void* arg) {
  auto* self = static_cast<AdminServer*>(arg);
  AdminRequest admin_request;
  admin_request.method = evhttp_request_get_command(request) == EVHTTP_REQ_POST ? "POST" : "GET";
  const char* path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(request));
  admin_request.path = path != nullptr ? path : "/";
  evbuffer* input = evhttp_request_get_input_buffer(request);
  admin_request.body.resize(evbuffer_get_length(input));
  evbuffer_copyout(input, admin_request.body.data(), admin_request.body.size());
  const char* authorization =
      evhttp_find_header(evhttp_request_get_input_headers(request), "Authorization");
  admin_request.authorization = authorization != nullptr ? authorization : "";
  const char* origin = evhttp_find_header(evhttp_request_get_input_headers(request), "Origin");
  admin_request.origin = origin != nullptr ? origin : "";
  char* peer = nullptr;
  uint16_t peer_port = 0;
  evhttp_connection_get_peer(evhttp_request_get_connection(request), &peer, &peer_port);
  std::string peer_address = peer != nullptr ? peer : "";
  admin_request.peer_is_loopback = absl::StartsWith(peer_address, "127.") ||
                                   peer_address == "::1" ||
                                   absl::StartsWith(peer_address, "::ffff:127.");

  std::weak_ptr<char> alive = self->alive_;
  HandleAdminRequest(admin_request, self->token_, self->backend_,
                     [request, alive](AdminReply reply) {
                       if (!alive.expired()) {
                         SendReply(request, reply);
                       }
                     });
}

// evhttp keeps a request whose reply is pending (a client that closes meanwhile detaches it
// from its connection) until this sends the reply and frees it.
void AdminServer::SendReply(evhttp_request* request, const AdminReply& reply) {
  evkeyvalq* headers = evhttp_request_get_output_headers(request);
  evhttp_add_header(headers, "Content-Type", reply.content_type.c_str());
  evhttp_add_header(headers, "Cache-Control", "no-store");
  evbuffer* body = evbuffer_new();
  evbuffer_add(body, reply.body.data(), reply.body.size());
  evhttp_send_reply(request, reply.status, nullptr, body);
  evbuffer_free(body);
}

}  // namespace confgate::admin
