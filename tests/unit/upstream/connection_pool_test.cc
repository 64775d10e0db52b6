#include "confgate/upstream/connection_pool.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "confgate/common/time_source.h"
#include "confgate/event/dispatcher.h"
#include "confgate/upstream/host.h"
#include "gtest/gtest.h"

namespace confgate::upstream {
namespace {

struct IgnoringHandler : UpstreamConnectionHandler {
  void OnUpstreamConnected(UpstreamConnection&) override {}
  void OnUpstreamReadable(UpstreamConnection&) override {}
  void OnUpstreamWritable(UpstreamConnection&) override {}
  void OnUpstreamClosed(UpstreamConnection&, bool) override {}
};

// A pool in front of a real listening socket on 127.0.0.1; time moves only when a test says so.
class ConnectionPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(listener_, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    ASSERT_EQ(listen(listener_, 16), 0);
    socklen_t length = sizeof(address);
    ASSERT_EQ(getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length), 0);
    host_ = std::make_shared<Host>("config-service",
                                   "127.0.0.1:" + std::to_string(ntohs(address.sin_port)),
                                   reinterpret_cast<sockaddr*>(&address), length, 1, false);
  }
  void TearDown() override {
    pool_.CloseAll();
    for (int fd : peers_) {
      close(fd);
    }
    close(listener_);
  }

  // A connected upstream connection; its accepted peer socket is peers_[index].
  UpstreamConnectionPtr Connect() {
    UpstreamConnectionPtr connection = UpstreamConnection::Connect(dispatcher_, *host_, handler_);
    for (int turn = 0; turn < 10000 && !connection->connected(); ++turn) {
      dispatcher_.RunReady();
    }
    EXPECT_TRUE(connection->connected());
    int peer = accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK);
    EXPECT_GE(peer, 0);
    peers_.push_back(peer);
    return connection;
  }
  // Whether the proxy side of peers_[index] has been closed.
  bool PeerSeesClose(size_t index) {
    char byte;
    return read(peers_[index], &byte, 1) == 0;
  }
  void TurnUntilIdleCount(size_t count) {
    for (int turn = 0; turn < 10000 && pool_.idle_count(*host_) != count; ++turn) {
      dispatcher_.RunReady();
    }
  }

  event::Dispatcher dispatcher_;
  SimulatedTimeSource time_;
  ConnectionPool pool_{dispatcher_, time_};
  IgnoringHandler handler_;
  int listener_ = -1;
  std::vector<int> peers_;
  std::shared_ptr<Host> host_;
};

TEST_F(ConnectionPoolTest, ReusesTheMostRecentlyReleasedConnectionFirst) {
  UpstreamConnectionPtr first = Connect();
  UpstreamConnectionPtr second = Connect();
  UpstreamConnection* first_raw = first.get();
  UpstreamConnection* second_raw = second.get();
  pool_.Release(std::move(first), 8, absl::Seconds(60));
  pool_.Release(std::move(second), 8, absl::Seconds(60));
  EXPECT_EQ(pool_.idle_count(*host_), 2u);

  UpstreamConnectionPtr taken = pool_.TakeIdle(*host_, handler_);
  EXPECT_EQ(taken.get(), second_raw);
  EXPECT_EQ(taken->reuse_count(), 1u);
  EXPECT_EQ(pool_.TakeIdle(*host_, handler_).get(), first_raw);
  EXPECT_EQ(pool_.TakeIdle(*host_, handler_), nullptr);
}

TEST_F(ConnectionPoolTest, KeepsAtMostMaxIdlePerHost) {
  pool_.Release(Connect(), 1, absl::Seconds(60));
  pool_.Release(Connect(), 1, absl::Seconds(60));
  EXPECT_EQ(pool_.idle_count(*host_), 1u);
  EXPECT_FALSE(PeerSeesClose(0));
  EXPECT_TRUE(PeerSeesClose(1));
}

TEST_F(ConnectionPoolTest, ClosesOnlyConnectionsPastTheirIdleTimeout) {
  pool_.Release(Connect(), 8, absl::Seconds(10));
  time_.Advance(absl::Seconds(5));
  UpstreamConnectionPtr younger = Connect();
  UpstreamConnection* younger_raw = younger.get();
  pool_.Release(std::move(younger), 8, absl::Seconds(10));

  time_.Advance(absl::Seconds(4));
  pool_.CloseExpired();
  EXPECT_EQ(pool_.idle_count(*host_), 2u);

  time_.Advance(absl::Seconds(2));  // the first has idled 11 s, the second 6 s
  pool_.CloseExpired();
  EXPECT_EQ(pool_.idle_count(*host_), 1u);
  EXPECT_TRUE(PeerSeesClose(0));
  EXPECT_FALSE(PeerSeesClose(1));
  EXPECT_EQ(pool_.TakeIdle(*host_, handler_).get(), younger_raw);
}

TEST_F(ConnectionPoolTest, AShorterIdleTimeoutAfterAReloadIsHonoured) {
  pool_.Release(Connect(), 8, absl::Seconds(60));
  pool_.Release(Connect(), 8, absl::Seconds(1));
  time_.Advance(absl::Seconds(2));
  pool_.CloseExpired();
  EXPECT_EQ(pool_.idle_count(*host_), 1u);
  EXPECT_FALSE(PeerSeesClose(0));
  EXPECT_TRUE(PeerSeesClose(1));
}

TEST_F(ConnectionPoolTest, AnIdleConnectionClosedByTheUpstreamIsDropped) {
  pool_.Release(Connect(), 8, absl::Seconds(60));
  pool_.Release(Connect(), 8, absl::Seconds(60));
  close(peers_[0]);
  peers_[0] = -1;
  TurnUntilIdleCount(1);
  EXPECT_EQ(pool_.idle_count(*host_), 1u);
}

TEST_F(ConnectionPoolTest, BytesOnAnIdleConnectionDropIt) {
  pool_.Release(Connect(), 8, absl::Seconds(60));
  ASSERT_EQ(write(peers_[0], "HTTP/1.1 200 OK\r\n", 17), 17);
  TurnUntilIdleCount(0);
  EXPECT_EQ(pool_.idle_count(*host_), 0u);
  EXPECT_EQ(pool_.TakeIdle(*host_, handler_), nullptr);
}

}  // namespace
}  // namespace confgate::upstream
