// The replicas behind the proxies in bench/peers: one thread and one epoll set answering every
// GET on any of its listeners with the same JSON document, as cheaply as a server can (one
// recv() and one send() a request). The load generator shares a core with the replicas, and
// with a general-purpose server there (nginx: writev(), request parsing, ~1.4 us of user time a
// request) that core ran out before a fast proxy's did: the bench measured the load core.
//
//   replica BODY_FILE COUNT   # listens on COUNT ephemeral ports of 127.0.0.1, prints them
//
// A request is everything up to an empty line: GETs only (the bench sends nothing else), and
// pipelined requests are answered in order.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace {

struct Connection {
  std::string received;
  std::string unsent;  // what the kernel did not take yet
  bool waiting_for_room = false;
};

class Replica {
 public:
  explicit Replica(std::string body) : body_(std::move(body)), epoll_(epoll_create1(0)) {
    if (epoll_ < 0) {
      Fail("epoll_create1");
    }
  }

  int Listen() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        listen(fd, 4096) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      Fail("listen");
    }
    listeners_.push_back(fd);
    Watch(fd, EPOLLIN);
    return ntohs(address.sin_port);
  }

  [[noreturn]] void Run() {
    epoll_event events[256];
    for (;;) {
      int count = epoll_wait(epoll_, events, 256, -1);
      if (count < 0 && errno != EINTR) {
        Fail("epoll_wait");
      }
      RefreshAnswer();
      for (int i = 0; i < count; ++i) {
        int fd = events[i].data.fd;
        if (IsListener(fd)) {
          Accept(fd);
        } else {
          if (events[i].events & EPOLLOUT) {
            Flush(fd);
          }
          if (events[i].events & ~EPOLLOUT) {
            Receive(fd);  // bytes, a close or an error
          }
        }
      }
    }
  }

 private:
  [[noreturn]] static void Fail(const char* what) {
    std::perror(what);
    std::exit(1);
  }

  void Watch(int fd, uint32_t events, int operation = EPOLL_CTL_ADD) {
    epoll_event event{};
    event.events = events;
    event.data.fd = fd;
    epoll_ctl(epoll_, operation, fd, &event);
  }

  bool IsListener(int fd) const {
    for (int listener : listeners_) {
      if (listener == fd) {
        return true;
      }
    }
    return false;
  }

  // The answer carries a Date, as any server's does; it changes once a second.
  void RefreshAnswer() {
    time_t now = time(nullptr);
    if (now == answered_at_) {
      return;
    }
    answered_at_ = now;
    char date[64];
    tm utc;
    gmtime_r(&now, &utc);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &utc);
    answer_ = "HTTP/1.1 200 OK\r\nServer: replica\r\nDate: ";
    answer_ += date;
    answer_ += "\r\nContent-Type: application/json\r\nContent-Length: ";
    answer_ += std::to_string(body_.size());
    answer_ += "\r\nConnection: keep-alive\r\nETag: \"v42\"\r\nCache-Control: max-age=60\r\n\r\n";
    answer_ += body_;
  }

  void Accept(int listener) {
    for (;;) {
      int fd = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
      if (fd < 0) {
        if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) {
          return;
        }
        Fail("accept4");  // out of descriptors: the figures would be wrong, not just slow
      }
      int on = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
      connections_[fd] = std::make_unique<Connection>();
      Watch(fd, EPOLLIN);
    }
  }

  void Close(int fd) {
    connections_.erase(fd);
    close(fd);
  }

  void Receive(int fd) {
    auto found = connections_.find(fd);
    if (found == connections_.end()) {
      return;
    }
    Connection& connection = *found->second;
    char buffer[16384];
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        Close(fd);
      }
      return;
    }
    std::string_view data(buffer, static_cast<size_t>(n));
    bool had_part = !connection.received.empty();
    if (had_part) {
      connection.received.append(data);
      data = connection.received;
    }
    size_t requests = 0;
    size_t end;
    while ((end = data.find("\r\n\r\n")) != std::string_view::npos) {
      ++requests;
      data.remove_prefix(end + 4);
    }
    // A partial request waits for the rest.
    if (had_part) {
      connection.received.erase(0, connection.received.size() - data.size());
    } else {
      connection.received.assign(data);
    }
    if (requests == 0) {
      return;
    }
    if (requests == 1 && connection.unsent.empty()) {
      Send(fd, connection, answer_);
      return;
    }
    for (size_t i = 0; i < requests; ++i) {
      connection.unsent += answer_;
    }
    Send(fd, connection, connection.unsent);
  }

  void Flush(int fd) {
    auto found = connections_.find(fd);
    if (found != connections_.end()) {
      Send(fd, *found->second, found->second->unsent);
    }
  }

  // `pending` is answer_ or the connection's unsent bytes; what the kernel does not take is
  // kept, and the connection waits for room.
  void Send(int fd, Connection& connection, std::string_view pending) {
    ssize_t sent = send(fd, pending.data(), pending.size(), MSG_NOSIGNAL);
    if (sent < 0 && errno != EAGAIN) {
      Close(fd);
      return;
    }
    size_t taken = sent < 0 ? 0 : static_cast<size_t>(sent);
    if (pending.data() == connection.unsent.data()) {
      connection.unsent.erase(0, taken);
    } else if (taken < pending.size()) {
      connection.unsent.assign(pending.substr(taken));
    }
    bool wait_for_room = !connection.unsent.empty();
    if (wait_for_room != connection.waiting_for_room) {
      connection.waiting_for_room = wait_for_room;
      Watch(fd, wait_for_room ? EPOLLIN | EPOLLOUT : EPOLLIN, EPOLL_CTL_MOD);
    }
  }

  std::string body_;
  int epoll_;
  std::vector<int> listeners_;
  std::unordered_map<int, std::unique_ptr<Connection>> connections_;
  std::string answer_;
  time_t answered_at_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s BODY_FILE COUNT\n", argv[0]);
    return 2;
  }
  std::ifstream file(argv[1], std::ios::binary);
  if (!file) {
    std::perror(argv[1]);
    return 1;
  }
  Replica replica{std::string(std::istreambuf_iterator<char>(file), {})};
  for (int i = 0, count = std::atoi(argv[2]); i < count; ++i) {
    std::printf("%d\n", replica.Listen());
  }
  std::fflush(stdout);
  replica.Run();
}
