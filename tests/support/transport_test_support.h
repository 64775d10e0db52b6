// For transport tests: what a network::Transport reports, and loopback sockets.
#pragma once

#include <event2/buffer.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

#include "confgate/network/transport.h"

namespace confgate::network {

struct TransportRecorder : TransportCallbacks {
  void OnTransportConnected() override { ++connected; }
  void OnTransportReadable() override { ++readable; }
  void OnTransportDrained() override { ++drained; }
  void OnTransportClosed(bool failed) override {
    ++closed;
    connect_failed = failed;
  }
  int connected = 0;
  int readable = 0;
  int drained = 0;
  int closed = 0;
  bool connect_failed = false;
};

// The bytes in `buffer`, left in place.
inline std::string Contents(evbuffer* buffer) {
  std::string out(evbuffer_get_length(buffer), '\0');
  evbuffer_copyout(buffer, out.data(), out.size());
  return out;
}

// A TCP socket bound to 127.0.0.1 on a port the kernel picks; `address` says which.
inline int BoundLoopbackSocket(sockaddr_in& address, int flags = 0) {
  int fd = socket(AF_INET, SOCK_STREAM | flags, 0);
  address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return -1;
  }
  return fd;
}

}  // namespace confgate::network
