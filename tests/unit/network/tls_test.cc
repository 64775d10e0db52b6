#include "confgate/network/tls.h"

#include "gtest/gtest.h"

namespace confgate::network {
namespace {

TEST(TicketKeys, RotationKeepsExactlyOnePreviousKey) {
  TicketKeys& keys = TicketKeys::Process();
  std::string first = keys.current_name();
  EXPECT_EQ(first.size(), TicketKeys::kNameBytes);
  EXPECT_TRUE(keys.Knows(first));
  keys.Rotate();
  std::string second = keys.current_name();
  EXPECT_NE(second, first);
  EXPECT_TRUE(keys.Knows(first));  // tickets under the previous key still open
  EXPECT_TRUE(keys.Knows(second));
  keys.Rotate();
  EXPECT_FALSE(keys.Knows(first));  // two rotations later: a full handshake
  EXPECT_TRUE(keys.Knows(second));
  EXPECT_FALSE(keys.Knows(std::string(TicketKeys::kNameBytes, '\0')));
}

TEST(ServerTls, MissingFilesAreNamedWithTheirField) {
  config::ListenerTlsConfig config;
  config.certificates.push_back({"/nonexistent/tls.crt", "/nonexistent/tls.key", 7});
  absl::StatusOr<std::shared_ptr<ServerTls>> tls = ServerTls::Create(config, "listeners[0].tls");
  ASSERT_FALSE(tls.ok());
  EXPECT_EQ(tls.status().message(),
            "listeners[0].tls.certificate: line 7: cannot read /nonexistent/tls.crt");
}

TEST(ClientTls, VerificationNeedsItsCaFile) {
  config::UpstreamTlsConfig config;
  config.ca_file = "/nonexistent/ca.pem";
  config.line = 3;
  absl::StatusOr<std::shared_ptr<ClientTls>> tls = ClientTls::Create(config, "upstreams.u.tls");
  ASSERT_FALSE(tls.ok());
  EXPECT_EQ(tls.status().message(),
            "upstreams.u.tls.ca_file: line 3: cannot read /nonexistent/ca.pem");
  config.insecure_skip_verify = true;
  EXPECT_TRUE(ClientTls::Create(config, "upstreams.u.tls").ok());
}

}  // namespace
}  // namespace confgate::network
