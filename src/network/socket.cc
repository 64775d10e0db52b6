#include "confgate/network/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace confgate::network {

absl::StatusOr<int> CreateListenSocket(const config::SocketAddress& address, int backlog) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* result = nullptr;
  std::string port = absl::StrCat(address.port);
  const char* host = address.host.empty() ? nullptr : address.host.c_str();
  int rc = getaddrinfo(host, port.c_str(), &hints, &result);
  if (rc != 0 || result == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot resolve listener address ",
                                                   address.ToString(), ": ", gai_strerror(rc)));
  }
  int fd = socket(result->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(result);
    return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (bind(fd, result->ai_addr, result->ai_addrlen) != 0) {
    int error = errno;
    freeaddrinfo(result);
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot bind ", address.ToString(), ": ", std::strerror(error)));
  }
  freeaddrinfo(result);
  if (listen(fd, backlog) != 0) {
    int error = errno;
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address.ToString(), ": ", std::strerror(error)));
  }
  return fd;
}

absl::StatusOr<uint16_t> BoundPort(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return absl::InternalError(absl::StrCat("getsockname: ", std::strerror(errno)));
  }
  if (addr.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  }
  return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
}

std::string PeerIp(const sockaddr* addr, socklen_t len) {
  char buffer[INET6_ADDRSTRLEN] = {};
  if (addr == nullptr || len == 0) {
    return "";
  }
  if (addr->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr, buffer,
              sizeof(buffer));
  } else if (addr->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr, buffer,
              sizeof(buffer));
  }
  return buffer;
}

std::string LocalAuthority(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return "";
  }
  std::string ip = PeerIp(reinterpret_cast<const sockaddr*>(&address), length);
  if (ip.empty()) {
    return "";
  }
  uint16_t port = address.ss_family == AF_INET6
                      ? ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port)
                      : ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
  return address.ss_family == AF_INET6 ? absl::StrCat("[", ip, "]:", port)
                                       : absl::StrCat(ip, ":", port);
}

}  // namespace confgate::network
