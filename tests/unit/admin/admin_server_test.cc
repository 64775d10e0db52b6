// The admin listener on real sockets: when it closes a connection, the socket's events are
// already out of the event loop.
#include "confgate/admin/admin_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace {

std::atomic<int> epoll_ctl_calls{0};
std::atomic<int> epoll_ctl_calls_on_closed{0};

}  // namespace

// This binary's epoll_ctl takes the place of libc's for libevent (a shared library resolves it
// to the executable's definition first): each call is counted, and so is each call on a number
// that is not an open descriptor. Such a call means the socket was closed while its event was
// registered; had another thread been given the number in between, the call would have reached
// that thread's socket (an epoll_ctl(ADD) would put it into this loop).
extern "C" int epoll_ctl(int epfd, int op, int fd, epoll_event* event) {
  epoll_ctl_calls.fetch_add(1);
  if (fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
    epoll_ctl_calls_on_closed.fetch_add(1);
  }
  return static_cast<int>(syscall(SYS_epoll_ctl, epfd, op, fd, event));
}

namespace confgate::admin {
namespace {

class StubBackend : public AdminBackend {
 public:
  std::string Metrics() override { return ""; }
  bool Ready() override { return true; }
  std::string StatusJson() override { return "{}"; }
  std::string ConfigJson() override { return "{}"; }
  void Reload(AdminResponder respond) override {
    respond(AdminReply{200, "application/json", "{}"});
  }
  AdminReply SetHostDrained(const std::string&, const std::string&, bool) override {
    return AdminReply{200, "application/json", "{}"};
  }
  AdminReply SetReadOnly(const std::string&, std::optional<bool>) override {
    return AdminReply{200, "application/json", "{}"};
  }
};

size_t OpenDescriptors() {
  size_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    ++count;
  }
  return count;
}

struct FreeBase {
  void operator()(event_base* base) const { event_base_free(base); }
};

class AdminServerSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_.reset(event_base_new());
    ASSERT_NE(base_, nullptr);
    // Bounds each wait of the loop below, should an expected event never come.
    tick_ = event_new(
        base_.get(), -1, EV_PERSIST, [](evutil_socket_t, short, void*) {}, nullptr);
    timeval second{1, 0};
    event_add(tick_, &second);
    config::AdminConfig config;
    config.address = config::SocketAddress{"127.0.0.1", 0};
    absl::StatusOr<std::unique_ptr<AdminServer>> started =
        AdminServer::Start(base_.get(), config, backend_);
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = *std::move(started);
    port_ = static_cast<uint16_t>(
        std::stoi(server_->address().substr(server_->address().rfind(':') + 1)));
  }
  void TearDown() override {
    server_.reset();
    if (tick_ != nullptr) {
      event_free(tick_);
    }
    base_.reset();
  }

  // Sends `request` on a new connection and runs the loop until the server has closed it (the
  // process has `open_before` descriptors again); what the client received.
  std::string Exchange(const std::string& request, bool client_closes_first, size_t open_before) {
    int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port_);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(client, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    EXPECT_EQ(send(client, request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
    std::string received;
    // Each pass waits for the next event: the accept, the request, the reply going out.
    for (int pass = 0; pass < 50; ++pass) {
      event_base_loop(base_.get(), EVLOOP_ONCE);
      char buffer[4096];
      ssize_t n;
      while ((n = recv(client, buffer, sizeof(buffer), MSG_DONTWAIT)) > 0) {
        received.append(buffer, static_cast<size_t>(n));
      }
      if (n == 0 || (client_closes_first && received.find("\r\n\r\n") != std::string::npos)) {
        break;  // the server's FIN, or (keep-alive) the whole reply head
      }
    }
    close(client);
    // The server sees the client's FIN, or libevent runs what it finalizes after a callback.
    for (int pass = 0; pass < 10 && OpenDescriptors() != open_before; ++pass) {
      event_base_loop(base_.get(), EVLOOP_ONCE);
    }
    return received;
  }

  StubBackend backend_;
  std::unique_ptr<event_base, FreeBase> base_;
  ::event* tick_ = nullptr;
  std::unique_ptr<AdminServer> server_;
  uint16_t port_ = 0;
};

TEST_F(AdminServerSocketTest, ClosesEachConnectionOnlyAfterItsEventsAreDeleted) {
  struct Case {
    const char* request;
    const char* status_line;
    bool client_closes_first;
  };
  const Case cases[] = {
      // The server closes after the reply, from inside the write callback.
      {"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "HTTP/1.1 200", false},
      {"GET /healthz HTTP/1.0\r\n\r\n", "HTTP/1.0 200", false},
      {"GET /healthz HTTP/1.1\r\nHost: x\r\nBad header\r\n\r\n", "HTTP/1.1 400", false},
      // Keep-alive: the server closes when it reads the client's FIN.
      {"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200", true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.request);
    size_t open_before = OpenDescriptors();
    int calls_before = epoll_ctl_calls.load();
    int stale_before = epoll_ctl_calls_on_closed.load();
    std::string reply = Exchange(c.request, c.client_closes_first, open_before);
    EXPECT_EQ(reply.rfind(c.status_line, 0), 0u) << reply;
    EXPECT_GT(epoll_ctl_calls.load(), calls_before);  // libevent's calls come through here
    EXPECT_EQ(epoll_ctl_calls_on_closed.load() - stale_before, 0);
    EXPECT_EQ(OpenDescriptors(), open_before);  // and the connection's socket is closed
  }
}

}  // namespace
}  // namespace confgate::admin
