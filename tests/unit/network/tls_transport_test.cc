// TLS transports (network::TlsStream inside the socket transport) against OpenSSL on the other
// end of a real socket: handshakes, data both ways with the kernel's buffer full, close_notify,
// and failures.
#include <event2/buffer.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <functional>
#include <memory>
#include <string>

#include "confgate/network/transport.h"
#include "gtest/gtest.h"
#include "support/transport_test_support.h"

namespace confgate::network {
namespace {

std::string Drain(evbuffer* buffer) {
  std::string out(evbuffer_get_length(buffer), '\0');
  evbuffer_remove(buffer, out.data(), out.size());
  return out;
}

// A self-signed P-256 certificate for "tls.test", made once for all tests.
struct TestIdentity {
  TestIdentity() {
    key = EVP_EC_gen("P-256");
    certificate = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(certificate), 1);
    X509_gmtime_adj(X509_getm_notBefore(certificate), -60);
    X509_gmtime_adj(X509_getm_notAfter(certificate), 3600);
    X509_set_pubkey(certificate, key);
    X509_NAME* name = X509_get_subject_name(certificate);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("tls.test"), -1, -1, 0);
    X509_set_issuer_name(certificate, name);
    X509_sign(certificate, key, EVP_sha256());
  }
  ~TestIdentity() {
    X509_free(certificate);
    EVP_PKEY_free(key);
  }
  EVP_PKEY* key;
  X509* certificate;
};

const TestIdentity& Identity() {
  static const TestIdentity identity;
  return identity;
}

SSL_CTX* ServerContext() {
  SSL_CTX* context = SSL_CTX_new(TLS_server_method());
  SSL_CTX_use_certificate(context, Identity().certificate);
  SSL_CTX_use_PrivateKey(context, Identity().key);
  return context;
}

// Trusts the test certificate when `trusting`; verifies the peer either way.
SSL_CTX* ClientContext(bool trusting) {
  SSL_CTX* context = SSL_CTX_new(TLS_client_method());
  if (trusting) {
    X509_STORE_add_cert(SSL_CTX_get_cert_store(context), Identity().certificate);
  }
  SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nullptr);
  return context;
}

class TlsTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // OpenSSL on the test's side answers a bare close with an alert: a write to a closed
    // socket, which must not kill the test (confgate itself ignores SIGPIPE).
    signal(SIGPIPE, SIG_IGN);
    server_context_ = ServerContext();
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair_), 0);
  }
  void TearDown() override {
    transport_.reset();
    if (peer_ != nullptr) {
      SSL_free(peer_);
    }
    if (pair_[1] >= 0) {
      close(pair_[1]);
    }
    SSL_CTX_free(server_context_);
    if (client_context_ != nullptr) {
      SSL_CTX_free(client_context_);
    }
  }
  void Turn() { event_base_loop(dispatcher_.base(), EVLOOP_NONBLOCK); }
  // Runs the loop and `step` in turn until `done` (or a bound that means a hang).
  bool RunUntil(
      const std::function<bool()>& done, const std::function<void()>& step = [] {}) {
    for (int i = 0; i < 20000; ++i) {
      if (done()) {
        return true;
      }
      Turn();
      step();
    }
    return false;
  }
  // An OpenSSL client on the far end of the socket pair, talking to a server transport.
  void StartServerWithPeerClient() {
    transport_ = Transport::AcceptedTls(dispatcher_, pair_[0], SSL_new(server_context_), recorder_);
    client_context_ = ClientContext(/*trusting=*/true);
    peer_ = SSL_new(client_context_);
    SSL_set_fd(peer_, pair_[1]);
    SSL_set1_host(peer_, "tls.test");
    SSL_set_connect_state(peer_);
    ASSERT_TRUE(RunUntil([&] { return SSL_do_handshake(peer_) == 1; }));
  }

  event::Dispatcher dispatcher_;
  SSL_CTX* server_context_ = nullptr;
  SSL_CTX* client_context_ = nullptr;
  int pair_[2] = {-1, -1};
  SSL* peer_ = nullptr;
  TransportRecorder recorder_;
  std::unique_ptr<Transport> transport_;
};

TEST_F(TlsTransportTest, ServerSideCarriesBothWaysAndEndsWithCloseNotify) {
  StartServerWithPeerClient();
  ASSERT_EQ(SSL_write(peer_, "GET / HTTP/1.1\r\n\r\n", 18), 18);
  ASSERT_TRUE(RunUntil([&] { return transport_->input_length() == 18; }));
  EXPECT_GE(recorder_.readable, 1);
  EXPECT_EQ(Drain(transport_->input()), "GET / HTTP/1.1\r\n\r\n");

  // More than the socket pair's buffer holds: the transport waits for room and goes on.
  std::string body(1 << 20, 'x');
  for (size_t i = 0; i < body.size(); i += 4096) {
    body[i] = static_cast<char>('a' + (i / 4096) % 26);
  }
  evbuffer_add(transport_->output(), body.data(), body.size());
  std::string received;
  char buffer[65536];
  ASSERT_TRUE(RunUntil([&] { return received.size() == body.size(); },
                       [&] {
                         int n = SSL_read(peer_, buffer, sizeof(buffer));
                         if (n > 0) {
                           received.append(buffer, static_cast<size_t>(n));
                         }
                       }));
  EXPECT_EQ(received, body);
  ASSERT_TRUE(RunUntil([&] { return recorder_.drained >= 1; }));
  EXPECT_EQ(transport_->output_length(), 0u);

  // Destroying the transport ends the session with close_notify, not a bare close.
  transport_.reset();
  ERR_clear_error();
  int n = SSL_read(peer_, buffer, sizeof(buffer));
  EXPECT_EQ(n, 0);
  EXPECT_EQ(SSL_get_error(peer_, n), SSL_ERROR_ZERO_RETURN);
  EXPECT_EQ(recorder_.closed, 0);
}

TEST_F(TlsTransportTest, ThePeersCloseNotifyClosesTheTransport) {
  StartServerWithPeerClient();
  EXPECT_FALSE(transport_->PeerClosedCleanly());
  SSL_shutdown(peer_);
  ASSERT_TRUE(RunUntil([&] { return recorder_.closed == 1; }));
  EXPECT_EQ(recorder_.readable, 0);
  // The end of a close-delimited message is known (the cache may keep it).
  EXPECT_TRUE(transport_->PeerClosedCleanly());
}

TEST_F(TlsTransportTest, ABareCloseIsNotAKnownEnd) {
  StartServerWithPeerClient();
  ASSERT_EQ(SSL_write(peer_, "part of a bo", 12), 12);
  ASSERT_TRUE(RunUntil([&] { return transport_->input_length() == 12; }));
  // The peer dies mid-message: a FIN without close_notify.
  close(pair_[1]);
  pair_[1] = -1;
  ASSERT_TRUE(RunUntil([&] { return recorder_.closed == 1; }));
  EXPECT_FALSE(transport_->PeerClosedCleanly());
}

TEST_F(TlsTransportTest, PlaintextToATlsListenerClosesItWithoutInput) {
  transport_ = Transport::AcceptedTls(dispatcher_, pair_[0], SSL_new(server_context_), recorder_);
  ASSERT_EQ(write(pair_[1], "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27), 27);
  ASSERT_TRUE(RunUntil([&] { return recorder_.closed == 1; }));
  EXPECT_EQ(recorder_.readable, 0);
  EXPECT_EQ(transport_->input_length(), 0u);
}

TEST_F(TlsTransportTest, CloseNotifyThatComesWithDataClosesAfterTheData) {
  StartServerWithPeerClient();
  // The peer waits for our close_notify after its own: no FIN comes.
  ASSERT_EQ(SSL_write(peer_, "last", 4), 4);
  SSL_shutdown(peer_);
  ASSERT_TRUE(RunUntil([&] { return recorder_.closed == 1; }));
  EXPECT_EQ(recorder_.readable, 1);
  EXPECT_EQ(Drain(transport_->input()), "last");
  EXPECT_TRUE(transport_->PeerClosedCleanly());
}

TEST_F(TlsTransportTest, AnAbortedConnectionEndsWithoutCloseNotify) {
  StartServerWithPeerClient();
  evbuffer_add(transport_->output(), "HTTP/1.0 200 OK\r\n\r\npart of a bo", 31);
  std::string received;
  char buffer[256];
  ASSERT_TRUE(RunUntil([&] { return received.size() == 31; },
                       [&] {
                         int n = SSL_read(peer_, buffer, sizeof(buffer));
                         if (n > 0) {
                           received.append(buffer, static_cast<size_t>(n));
                         }
                       }));
  // The body is cut short: the peer must see a truncation, not a clean end.
  transport_->Abort();
  transport_.reset();
  ERR_clear_error();
  int n = SSL_read(peer_, buffer, sizeof(buffer));
  EXPECT_LE(n, 0);
  EXPECT_NE(SSL_get_error(peer_, n), SSL_ERROR_ZERO_RETURN);
}

TEST_F(TlsTransportTest, AFailedHandshakeSendsTheAlertThatSaysWhy) {
  SSL_CTX_set_min_proto_version(server_context_, TLS1_3_VERSION);
  transport_ = Transport::AcceptedTls(dispatcher_, pair_[0], SSL_new(server_context_), recorder_);
  client_context_ = ClientContext(/*trusting=*/true);
  SSL_CTX_set_max_proto_version(client_context_, TLS1_2_VERSION);
  peer_ = SSL_new(client_context_);
  SSL_set_fd(peer_, pair_[1]);
  SSL_set_connect_state(peer_);
  int result = 0;
  ASSERT_TRUE(RunUntil([&] {
    ERR_clear_error();
    result = SSL_do_handshake(peer_);
    return result == 1 || SSL_get_error(peer_, result) != SSL_ERROR_WANT_READ;
  }));
  EXPECT_NE(result, 1);
  EXPECT_EQ(ERR_GET_REASON(ERR_peek_error()), SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
  EXPECT_EQ(recorder_.closed, 1);
}

// Client transports connect over loopback to a server transport in the same loop.
class TlsConnectTest : public TlsTransportTest {
 protected:
  void TearDown() override {
    client_.reset();
    TlsTransportTest::TearDown();
    if (listener_ >= 0) {
      close(listener_);
    }
  }
  // A client transport with `session` connecting to a fresh loopback listener.
  void ConnectClient(SSL* session) {
    sockaddr_in address;
    listener_ = BoundLoopbackSocket(address, SOCK_NONBLOCK);
    ASSERT_GE(listener_, 0);
    ASSERT_EQ(listen(listener_, 4), 0);
    client_ = Transport::ConnectTls(dispatcher_, reinterpret_cast<sockaddr*>(&address),
                                    sizeof(address), session, client_recorder_);
  }
  // The client's connection, accepted as confgate's listeners accept it (TCP_NODELAY).
  int AcceptClient() {
    int accepted = -1;
    EXPECT_TRUE(RunUntil([&] {
      accepted = accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK);
      return accepted >= 0;
    }));
    int one = 1;
    setsockopt(accepted, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return accepted;
  }
  // Connects a client transport (verifying against `trusting`) and accepts its connection
  // into a server transport.
  void Connect(bool trusting) {
    client_context_ = ClientContext(trusting);
    SSL* session = SSL_new(client_context_);
    SSL_set1_host(session, "tls.test");
    ConnectClient(session);
    int accepted = AcceptClient();
    ASSERT_GE(accepted, 0);
    transport_ = Transport::AcceptedTls(dispatcher_, accepted, SSL_new(server_context_), recorder_);
  }

  int listener_ = -1;
  TransportRecorder client_recorder_;
  std::unique_ptr<Transport> client_;
};

TEST_F(TlsConnectTest, ConnectedOnlyOnceTheHandshakeIsDoneAndQueuedOutputFollows) {
  Connect(/*trusting=*/true);
  evbuffer_add(client_->output(), "PING", 4);  // queued before the session is up
  ASSERT_TRUE(RunUntil([&] { return transport_->input_length() == 4; }));
  EXPECT_EQ(client_recorder_.connected, 1);
  EXPECT_EQ(Drain(transport_->input()), "PING");
  evbuffer_add(transport_->output(), "PONG", 4);
  ASSERT_TRUE(RunUntil([&] { return client_->input_length() == 4; }));
  EXPECT_EQ(Drain(client_->input()), "PONG");
  EXPECT_EQ(client_recorder_.closed, 0);
  // Drained means the owner's bytes went out: handshake records alone do not count.
  EXPECT_EQ(client_recorder_.drained, 1);
  EXPECT_EQ(recorder_.drained, 1);
  // The server end goes away: close_notify, then the client transport reports a close.
  transport_.reset();
  ASSERT_TRUE(RunUntil([&] { return client_recorder_.closed == 1; }));
  EXPECT_FALSE(client_recorder_.connect_failed);
}

TEST_F(TlsConnectTest, AnUntrustedCertificateIsAFailedConnect) {
  Connect(/*trusting=*/false);
  evbuffer_add(client_->output(), "SECRET", 6);
  ASSERT_TRUE(RunUntil([&] { return client_recorder_.closed == 1; }));
  EXPECT_TRUE(client_recorder_.connect_failed);
  EXPECT_EQ(client_recorder_.connected, 0);
  RunUntil([&] { return recorder_.closed == 1; });
  EXPECT_EQ(transport_->input_length(), 0u);  // nothing was sent in the clear or otherwise
}

TEST_F(TlsConnectTest, AResetDuringTheHandshakeIsAFailedConnect) {
  client_context_ = ClientContext(/*trusting=*/true);
  ConnectClient(SSL_new(client_context_));
  int accepted = AcceptClient();
  ASSERT_GE(accepted, 0);
  char hello[4096];
  ASSERT_TRUE(RunUntil([&] { return read(accepted, hello, sizeof(hello)) > 0; }));
  linger reset = {1, 0};  // close with RST: an upstream that died with our ClientHello
  setsockopt(accepted, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  close(accepted);
  ASSERT_TRUE(RunUntil([&] { return client_recorder_.closed == 1; }));
  EXPECT_TRUE(client_recorder_.connect_failed);
  EXPECT_EQ(client_recorder_.connected, 0);
}

TEST_F(TlsConnectTest, NoSessionIsAFailedConnectNotPlaintext) {
  ConnectClient(nullptr);
  EXPECT_EQ(client_recorder_.closed, 0);  // reported from the loop
  ASSERT_TRUE(RunUntil([&] { return client_recorder_.closed == 1; }));
  EXPECT_TRUE(client_recorder_.connect_failed);
  EXPECT_LT(accept(listener_, nullptr, nullptr), 0);  // nothing was even connected
}

}  // namespace
}  // namespace confgate::network
