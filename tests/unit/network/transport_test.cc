#include "confgate/network/transport.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <string>

#include "confgate/common/recycling.h"
#include "gtest/gtest.h"
#include "support/transport_test_support.h"

namespace confgate::network {
namespace {

// Records what a transport reports.

class TransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair_), 0);
  }
  void TearDown() override {
    transport_.reset();
    if (pair_[1] >= 0) {
      close(pair_[1]);
    }
  }
  // One loop iteration that also runs what became active during it.
  void Turn() { dispatcher_.RunReady(); }
  std::string ReadPeer() {
    std::string out;
    char buffer[65536];
    ssize_t n;
    while ((n = read(pair_[1], buffer, sizeof(buffer))) > 0) {
      out.append(buffer, static_cast<size_t>(n));
    }
    return out;
  }

  event::Dispatcher dispatcher_;
  int pair_[2] = {-1, -1};
  TransportRecorder recorder_;
  std::unique_ptr<Transport> transport_;
};

TEST_F(TransportTest, ReadsWhatThePeerSendsAndReportsEof) {
  transport_ = Transport::Accepted(dispatcher_, pair_[0], recorder_);
  ASSERT_EQ(write(pair_[1], "GET / HTTP/1.1\r\n\r\n", 18), 18);
  Turn();
  EXPECT_EQ(recorder_.readable, 1);
  EXPECT_EQ(Contents(transport_->input()), "GET / HTTP/1.1\r\n\r\n");
  shutdown(pair_[1], SHUT_WR);
  Turn();
  EXPECT_EQ(recorder_.closed, 1);
  EXPECT_FALSE(recorder_.connect_failed);
  // Plain TCP cannot tell a finished message from a peer that died mid-message.
  EXPECT_FALSE(transport_->PeerClosedCleanly());
}

TEST_F(TransportTest, OutputIsSentFromTheLoopWithoutArmingTheWriteEvent) {
  transport_ = Transport::Accepted(dispatcher_, pair_[0], recorder_);
  evbuffer_add(transport_->output(), "HTTP/1.1 ", 9);
  evbuffer_add(transport_->output(), "200 OK\r\n\r\n", 10);
  EXPECT_EQ(ReadPeer(), "");  // nothing is written inside the caller's callback
  Turn();
  EXPECT_EQ(ReadPeer(), "HTTP/1.1 200 OK\r\n\r\n");  // both pieces, sent together
  EXPECT_EQ(recorder_.drained, 1);
  EXPECT_EQ(evbuffer_get_length(transport_->output()), 0u);
}

TEST_F(TransportTest, AFullSocketBufferIsWrittenWhenThePeerReads) {
  transport_ = Transport::Accepted(dispatcher_, pair_[0], recorder_);
  std::string big(8 * 1024 * 1024, 'x');
  evbuffer_add(transport_->output(), big.data(), big.size());
  Turn();
  EXPECT_GT(evbuffer_get_length(transport_->output()), 0u);  // the kernel took only part
  EXPECT_EQ(recorder_.drained, 0);
  size_t received = 0;
  for (int i = 0; i < 10000 && received < big.size(); ++i) {
    received += ReadPeer().size();
    Turn();
  }
  EXPECT_EQ(received, big.size());
  EXPECT_EQ(recorder_.drained, 1);
}

TEST_F(TransportTest, ReadingPausesAtTheLimitAndResumesAsTheOwnerDrains) {
  transport_ = Transport::Accepted(dispatcher_, pair_[0], recorder_);
  transport_->SetReadLimit(32 * 1024);
  std::string chunk(16 * 1024, 'p');
  for (int i = 0; i < 6; ++i) {
    ASSERT_EQ(write(pair_[1], chunk.data(), chunk.size()), static_cast<ssize_t>(chunk.size()));
  }
  for (int i = 0; i < 10; ++i) {
    Turn();
  }
  size_t held = evbuffer_get_length(transport_->input());
  EXPECT_GE(held, 32u * 1024);
  EXPECT_LT(held, 6u * chunk.size());  // the rest waits in the kernel
  evbuffer_drain(transport_->input(), held);
  for (int i = 0; i < 10; ++i) {
    Turn();
  }
  EXPECT_GT(evbuffer_get_length(transport_->input()), 0u);  // reading resumed
}

TEST_F(TransportTest, DisabledReadingLeavesBytesInTheKernel) {
  transport_ = Transport::Accepted(dispatcher_, pair_[0], recorder_);
  transport_->DisableReading();
  ASSERT_EQ(write(pair_[1], "abc", 3), 3);
  Turn();
  EXPECT_EQ(recorder_.readable, 0);
  transport_->EnableReading();
  Turn();
  EXPECT_EQ(recorder_.readable, 1);
  EXPECT_EQ(Contents(transport_->input()), "abc");
}

TEST_F(TransportTest, EmptyBuffersGoBackToTheSparesAndNextOwnersReuseThem) {
  if (!kRecycleMemory) {
    GTEST_SKIP() << "the sanitizer build frees instead of recycling";
  }
  transport_ = Transport::Accepted(dispatcher_, pair_[0], recorder_);
  int other[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, other), 0);
  TransportRecorder other_recorder;
  auto next = Transport::Accepted(dispatcher_, other[0], other_recorder);

  ASSERT_EQ(write(pair_[1], "GET", 3), 3);
  Turn();
  evbuffer* input = transport_->input();
  transport_->ReleaseIdleBuffers();  // bytes still unread: the input stays
  EXPECT_EQ(transport_->input(), input);
  EXPECT_EQ(Contents(input), "GET");
  evbuffer_drain(input, 3);
  transport_->ReleaseIdleBuffers();
  EXPECT_EQ(next->input(), input);  // the next owner gets it

  evbuffer* output = transport_->output();
  evbuffer_add(output, "200", 3);
  Turn();  // written out completely: the output goes back on its own
  EXPECT_EQ(ReadPeer(), "200");
  EXPECT_EQ(recorder_.drained, 1);
  EXPECT_EQ(transport_->output_length(), 0u);
  EXPECT_EQ(next->output(), output);
  evbuffer_add(next->output(), "to the new owner", 16);
  Turn();
  char buffer[32] = {};
  EXPECT_EQ(read(other[1], buffer, sizeof(buffer)), 16);
  EXPECT_EQ(ReadPeer(), "");  // nothing reaches the buffer's earlier owner
  EXPECT_EQ(other_recorder.drained, 1);
  EXPECT_EQ(recorder_.drained, 1);
  next.reset();
  close(other[1]);
}

TEST_F(TransportTest, AskingForTheOutputWithoutAddingReportsNothing) {
  transport_ = Transport::Accepted(dispatcher_, pair_[0], recorder_);
  transport_->output();
  Turn();
  EXPECT_EQ(recorder_.drained, 0);
  EXPECT_EQ(ReadPeer(), "");
}

class ConnectTest : public ::testing::Test {
 protected:
  void TearDown() override {
    transport_.reset();
    if (listener_ >= 0) {
      close(listener_);
    }
  }
  sockaddr_in Listen(bool listening) {
    sockaddr_in address;
    listener_ = BoundLoopbackSocket(address);
    EXPECT_GE(listener_, 0);
    if (listening) {
      EXPECT_EQ(listen(listener_, 4), 0);
    }
    return address;
  }
  void RunUntil(const std::function<bool()>& done) {
    for (int i = 0; i < 2000 && !done(); ++i) {
      event_base_loop(dispatcher_.base(), EVLOOP_ONCE);
    }
  }

  event::Dispatcher dispatcher_;
  int listener_ = -1;
  TransportRecorder recorder_;
  std::unique_ptr<Transport> transport_;
};

TEST_F(ConnectTest, OutputQueuedBeforeTheConnectIsSentOnceOpen) {
  sockaddr_in address = Listen(/*listening=*/true);
  transport_ = Transport::Connect(dispatcher_, reinterpret_cast<sockaddr*>(&address),
                                  sizeof(address), recorder_);
  evbuffer_add(transport_->output(), "PING", 4);
  EXPECT_EQ(recorder_.connected, 0);  // reported from the loop, never from inside Connect
  RunUntil([&] { return recorder_.connected == 1 && recorder_.drained == 1; });
  EXPECT_EQ(recorder_.connected, 1);
  int peer = accept(listener_, nullptr, nullptr);
  ASSERT_GE(peer, 0);
  char buffer[8] = {};
  EXPECT_EQ(read(peer, buffer, sizeof(buffer)), 4);
  EXPECT_EQ(std::string(buffer, 4), "PING");
  ASSERT_EQ(write(peer, "PONG", 4), 4);
  RunUntil([&] { return recorder_.readable > 0; });
  EXPECT_EQ(Contents(transport_->input()), "PONG");
  close(peer);
}

TEST_F(ConnectTest, ARefusedConnectIsReportedAsAConnectFailure) {
  sockaddr_in address = Listen(/*listening=*/false);  // bound, not listening: refused
  transport_ = Transport::Connect(dispatcher_, reinterpret_cast<sockaddr*>(&address),
                                  sizeof(address), recorder_);
  EXPECT_EQ(recorder_.closed, 0);
  RunUntil([&] { return recorder_.closed == 1; });
  EXPECT_EQ(recorder_.closed, 1);
  EXPECT_TRUE(recorder_.connect_failed);
  EXPECT_EQ(recorder_.connected, 0);
}

}  // namespace
}  // namespace confgate::network
