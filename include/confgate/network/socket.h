// Socket set-up helpers shared by listeners and upstream connections.
#pragma once

#include <sys/socket.h>

#include <string>

#include "absl/status/statusor.h"
#include "confgate/config/config.h"

namespace confgate::network {

// A non-blocking listening socket with SO_REUSEPORT, so every worker binds its own socket to
// the same address and the kernel spreads connections between them.
absl::StatusOr<int> CreateListenSocket(const config::SocketAddress& address, int backlog = 4096);

// The port a socket is bound to (for listeners configured with port 0).
absl::StatusOr<uint16_t> BoundPort(int fd);

// "1.2.3.4" or "::1" for a peer address; empty when unknown.
std::string PeerIp(const sockaddr* addr, socklen_t len);

// The local address of a connected socket as a Host value: "1.2.3.4:8080" or "[::1]:8080";
// empty when unknown.
std::string LocalAuthority(int fd);

}  // namespace confgate::network
