#include "confgate/http/forwarding.h"

#include <regex>
#include <set>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace confgate::http {
namespace {

using ::testing::MatchesRegex;

RequestHead MakeHead() {
  RequestHead head;
  head.method = "GET";
  head.SetTarget("/v1/kv/app");
  head.headers.Add("Host", "config.example");
  return head;
}

TEST(RemoveHopByHopHeaders, RemovesStandardAndConnectionNamedHeaders) {
  HeaderMap headers;
  headers.Add("Host", "h");
  headers.Add("Connection", "keep-alive, X-Secret");
  headers.Add("X-Secret", "s");
  headers.Add("Keep-Alive", "timeout=5");
  headers.Add("Proxy-Connection", "keep-alive");
  headers.Add("TE", "trailers");
  headers.Add("Trailer", "X-T");
  headers.Add("Upgrade", "websocket");
  headers.Add("Proxy-Authorization", "Basic eDp5");
  headers.Add("Proxy-Authenticate", "Basic");
  headers.Add("Proxy", "http://evil.example");
  headers.Add("Transfer-Encoding", "chunked");
  headers.Add("Content-Length", "5");
  headers.Add("X-Kept", "1");
  RemoveHopByHopHeaders(headers);
  ASSERT_EQ(headers.size(), 2u);
  EXPECT_EQ(headers.entries()[0].name, "Host");
  EXPECT_EQ(headers.entries()[1].name, "X-Kept");
}

TEST(PrepareUpstreamRequest, AddsForwardingHeaders) {
  RequestHead head = MakeHead();
  RequestIdRandom random;
  std::string id(PrepareUpstreamRequest(head, {"10.1.2.3", "http", "1.1 confgate", ""}, random));
  EXPECT_EQ(*head.headers.Get("x-forwarded-for"), "10.1.2.3");
  EXPECT_EQ(*head.headers.Get("x-forwarded-proto"), "http");
  EXPECT_EQ(*head.headers.Get("via"), "1.1 confgate");
  EXPECT_EQ(*head.headers.Get("x-request-id"), id);
  EXPECT_THAT(id,
              MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"));
}

TEST(PrepareUpstreamRequest, AppendsToExistingChainsAndKeepsValidRequestId) {
  RequestHead head = MakeHead();
  head.headers.Add("X-Forwarded-For", "203.0.113.9");
  head.headers.Add("X-Forwarded-Proto", "https");  // a client cannot claim TLS it did not use
  head.headers.Add("Via", "1.0 edge");
  head.headers.Add("X-Request-Id", "abc-123");
  RequestIdRandom random;
  std::string id(PrepareUpstreamRequest(head, {"10.1.2.3", "http", "1.1 confgate", ""}, random));
  EXPECT_EQ(*head.headers.Get("x-forwarded-for"), "203.0.113.9, 10.1.2.3");
  EXPECT_EQ(*head.headers.Get("x-forwarded-proto"), "http");
  EXPECT_EQ(*head.headers.Get("via"), "1.0 edge, 1.1 confgate");
  EXPECT_EQ(id, "abc-123");
}

TEST(PrepareUpstreamRequest, ReplacesUnsafeRequestId) {
  RequestHead head = MakeHead();
  head.headers.Add("X-Request-Id", "bad id\"<script>");
  RequestIdRandom random;
  std::string id(PrepareUpstreamRequest(head, {"10.1.2.3", "http", "1.1 confgate", ""}, random));
  EXPECT_NE(id, "bad id\"<script>");
  EXPECT_TRUE(IsAcceptableRequestId(id));
  // Host + XFF + XFP + X-Real-IP + X-Request-Id + Via
  EXPECT_EQ(head.headers.entries().size(), 6u);
}

TEST(PrepareUpstreamRequest, ProxyCredentialsAndHttpoxyAreNotForwarded) {
  RequestHead head = MakeHead();
  head.headers.Add("Proxy-Authorization", "Basic cHJveHk6c2VjcmV0");
  head.headers.Add("Proxy", "http://evil.example:3128");
  head.headers.Add("Authorization", "Bearer end-to-end");
  RequestIdRandom random;
  PrepareUpstreamRequest(head, {"10.1.2.3", "http", "1.1 confgate", ""}, random);
  EXPECT_FALSE(head.headers.Has("proxy-authorization"));
  EXPECT_FALSE(head.headers.Has("proxy"));
  EXPECT_EQ(*head.headers.Get("authorization"), "Bearer end-to-end");
}

// HAProxy's "option forwardfor" adds a field of its own after whatever the client sent: every
// field counts, in order, so the peer's entry stays last and the one before it is the proxy's.
TEST(PrepareUpstreamRequest, CombinesEveryForwardedForAndViaField) {
  RequestHead head = MakeHead();
  head.headers.Add("X-Forwarded-For", "6.6.6.6");       // forged by the client
  head.headers.Add("X-Forwarded-For", "198.51.100.4");  // added by the proxy in front
  head.headers.Add("Via", "1.1 client-side");
  head.headers.Add("Via", "1.1 haproxy");
  RequestIdRandom random;
  PrepareUpstreamRequest(head, {"10.1.2.3", "http", "1.1 confgate", ""}, random);
  int forwarded_for = 0;
  for (const HeaderMap::Entry& entry : head.headers.entries()) {
    forwarded_for += entry.name == "X-Forwarded-For" ? 1 : 0;
  }
  EXPECT_EQ(forwarded_for, 1);
  EXPECT_EQ(*head.headers.Get("x-forwarded-for"), "6.6.6.6, 198.51.100.4, 10.1.2.3");
  EXPECT_EQ(*head.headers.Get("via"), "1.1 client-side, 1.1 haproxy, 1.1 confgate");
}

TEST(PrepareUpstreamRequest, RealIpIsThePeerAndForwardedPassesThrough) {
  RequestHead head = MakeHead();
  head.headers.Add("X-Real-IP", "6.6.6.6");
  head.headers.Add("x-real-ip", "7.7.7.7");
  head.headers.Add("Forwarded", "for=6.6.6.6;proto=https");
  RequestIdRandom random;
  PrepareUpstreamRequest(head, {"10.1.2.3", "http", "1.1 confgate", ""}, random);
  int real_ip = 0;
  for (const HeaderMap::Entry& entry : head.headers.entries()) {
    real_ip += absl::EqualsIgnoreCase(entry.name, "x-real-ip") ? 1 : 0;
  }
  EXPECT_EQ(real_ip, 1);
  EXPECT_EQ(*head.headers.Get("x-real-ip"), "10.1.2.3");
  // confgate does not manage Forwarded (RFC 7239): it arrives as the client wrote it.
  EXPECT_EQ(*head.headers.Get("forwarded"), "for=6.6.6.6;proto=https");
}

TEST(PrepareUpstreamRequest, DropsExpectBecauseTheProxyAnswersIt) {
  RequestHead head = MakeHead();
  head.headers.Add("Expect", "100-continue");
  RequestIdRandom random;
  PrepareUpstreamRequest(head, {"10.1.2.3", "http", "1.1 confgate", ""}, random);
  EXPECT_FALSE(head.headers.Has("expect"));
}

// A Connection field may name only what belongs to the hop: naming Host must not leave the
// upstream without one, nor naming the forwarding fields drop what a proxy in front added.
TEST(PrepareUpstreamRequest, ConnectionCannotTakeHostOrForwardingFields) {
  RequestHead head = MakeHead();
  head.headers.Add("Connection", "Host, X-Forwarded-For, Via, X-Request-Id, X-Secret");
  head.headers.Add("X-Forwarded-For", "203.0.113.9");
  head.headers.Add("Via", "1.0 edge");
  head.headers.Add("X-Request-Id", "abc-123");
  head.headers.Add("X-Secret", "s");
  RequestIdRandom random;
  std::string id(PrepareUpstreamRequest(head, {"10.1.2.3", "http", "1.1 confgate", ""}, random));
  ASSERT_NE(head.headers.Get("host"), nullptr);
  EXPECT_EQ(*head.headers.Get("host"), "config.example");
  EXPECT_EQ(*head.headers.Get("x-forwarded-for"), "203.0.113.9, 10.1.2.3");
  EXPECT_EQ(*head.headers.Get("via"), "1.0 edge, 1.1 confgate");
  EXPECT_EQ(id, "abc-123");
  EXPECT_EQ(head.headers.Get("x-secret"), nullptr);
  EXPECT_EQ(head.headers.Get("connection"), nullptr);
}

TEST(PrepareUpstreamRequest, RequestWithoutHostGetsTheAddressTheClientReached) {
  RequestHead head;
  head.method = "GET";
  head.version_minor = 0;
  head.SetTarget("/v1/kv/app");
  RequestIdRandom random;
  PrepareUpstreamRequest(head, {"10.1.2.3", "http", "1.1 confgate", "127.0.0.1:8080"}, random);
  ASSERT_NE(head.headers.Get("host"), nullptr);
  EXPECT_EQ(*head.headers.Get("host"), "127.0.0.1:8080");
  // One Host only, where the request had its own.
  RequestHead with_host = MakeHead();
  PrepareUpstreamRequest(with_host, {"10.1.2.3", "http", "1.1 confgate", "127.0.0.1:8080"}, random);
  int hosts = 0;
  for (const HeaderMap::Entry& entry : with_host.headers.entries()) {
    hosts += entry.id == FieldId::kHost;
  }
  EXPECT_EQ(hosts, 1);
  EXPECT_EQ(*with_host.headers.Get("host"), "config.example");
}

TEST(IsAcceptableRequestId, Bounds) {
  EXPECT_TRUE(IsAcceptableRequestId("a"));
  EXPECT_TRUE(IsAcceptableRequestId(std::string(128, 'x')));
  EXPECT_FALSE(IsAcceptableRequestId(std::string(129, 'x')));
  EXPECT_FALSE(IsAcceptableRequestId(""));
  EXPECT_FALSE(IsAcceptableRequestId("a\r\nb"));
}

TEST(GenerateRequestId, VersionFourUuidsThatDoNotRepeat) {
  RequestIdRandom random;
  const std::regex uuid("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  std::set<std::string> seen;
  std::set<char> digits;
  for (int i = 0; i < 2000; ++i) {
    std::string id = GenerateRequestId(random);
    ASSERT_TRUE(std::regex_match(id, uuid)) << id;
    EXPECT_TRUE(seen.insert(id).second) << id;
    digits.insert(id.begin(), id.end());
  }
  EXPECT_EQ(digits.size(), 17u);  // every hex digit turns up, and the dash
}

TEST(PrepareDownstreamResponse, StripsHopByHopAndAddsVia) {
  ResponseHead head;
  head.status = 200;
  head.headers.Add("Connection", "close");
  head.headers.Add("Content-Length", "3");
  head.headers.Add("Proxy-Authenticate", "Basic realm=\"replica\"");
  head.headers.Add("ETag", "\"7\"");
  PrepareDownstreamResponse(head, "1.1 confgate");
  EXPECT_FALSE(head.headers.Has("connection"));
  EXPECT_FALSE(head.headers.Has("content-length"));
  EXPECT_FALSE(head.headers.Has("proxy-authenticate"));
  EXPECT_EQ(*head.headers.Get("etag"), "\"7\"");
  EXPECT_EQ(*head.headers.Get("via"), "1.1 confgate");
}

TEST(SetFramingHeader, WritesTheRightHeader) {
  HeaderMap headers;
  SetFramingHeader(headers, BodyFraming::kContentLength, 42);
  EXPECT_EQ(*headers.Get("content-length"), "42");
  HeaderMap chunked;
  SetFramingHeader(chunked, BodyFraming::kChunked, 0);
  EXPECT_EQ(*chunked.Get("transfer-encoding"), "chunked");
  HeaderMap none;
  SetFramingHeader(none, BodyFraming::kNone, 0);
  EXPECT_TRUE(none.empty());
}

}  // namespace
}  // namespace confgate::http
