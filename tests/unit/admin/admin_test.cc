#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "confgate/admin/admin_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace confgate::admin {
namespace {

class FakeBackend : public AdminBackend {
 public:
  std::string Metrics() override { return "confgate_up 1\n"; }
  bool Ready() override { return ready; }
  std::string StatusJson() override { return "{\"upstreams\":[]}"; }
  std::string ConfigJson() override { return "{}"; }
  void Reload(AdminResponder respond) override {
    ++reloads;
    if (hold_reloads) {
      held.push_back(std::move(respond));  // answered when the test says
    } else {
      respond(AdminReply{200, "application/json", "{}"});
    }
  }
  AdminReply SetHostDrained(const std::string& upstream, const std::string& address,
                            bool drained) override {
    last = upstream + " " + address + (drained ? " drain" : " enable");
    return AdminReply{200, "application/json", "{}"};
  }
  AdminReply SetReadOnly(const std::string& upstream, std::optional<bool> read_only) override {
    last = upstream + (read_only.has_value() ? (*read_only ? " on" : " off") : " auto");
    return AdminReply{200, "application/json", "{}"};
  }

  bool ready = true;
  bool hold_reloads = false;
  std::vector<AdminResponder> held;
  int reloads = 0;
  std::string last;
};

AdminRequest Request(std::string method, std::string path, std::string body = "",
                     bool loopback = true, std::string authorization = "",
                     std::string origin = "") {
  AdminRequest request;
  request.method = std::move(method);
  request.path = std::move(path);
  request.body = std::move(body);
  request.peer_is_loopback = loopback;
  request.authorization = std::move(authorization);
  request.origin = std::move(origin);
  return request;
}

// The reply of a call answered at once; status 0 when nothing was answered (yet).
AdminReply Handle(const AdminRequest& request, const std::string& token, AdminBackend& backend) {
  AdminReply reply{0, "", ""};
  HandleAdminRequest(request, token, backend, [&reply](AdminReply given) { reply = given; });
  return reply;
}

TEST(AdminRouting, ReadOnlyEndpoints) {
  FakeBackend backend;
  EXPECT_EQ(Handle(Request("GET", "/healthz"), "", backend).status, 200);
  AdminReply metrics = Handle(Request("GET", "/metrics"), "", backend);
  EXPECT_EQ(metrics.body, "confgate_up 1\n");
  EXPECT_EQ(metrics.content_type, "text/plain; version=0.0.4");
  EXPECT_EQ(Handle(Request("GET", "/readyz"), "", backend).status, 200);
  backend.ready = false;
  EXPECT_EQ(Handle(Request("GET", "/readyz"), "", backend).status, 503);
  EXPECT_EQ(Handle(Request("GET", "/status"), "", backend).content_type, "application/json");
  EXPECT_EQ(Handle(Request("GET", "/nope"), "", backend).status, 404);
  EXPECT_EQ(Handle(Request("DELETE", "/status"), "", backend).status, 405);
  // Reads never need the token, even from other hosts.
  EXPECT_EQ(Handle(Request("GET", "/status", "", false), "secret", backend).status, 200);
}

TEST(AdminRouting, MutatingCallsAndTheirPaths) {
  FakeBackend backend;
  EXPECT_EQ(Handle(Request("POST", "/upstreams/cs/hosts/10.0.0.1:80/drain"), "", backend).status,
            200);
  EXPECT_EQ(backend.last, "cs 10.0.0.1:80 drain");
  Handle(Request("POST", "/upstreams/cs/hosts/10.0.0.1:80/enable"), "", backend);
  EXPECT_EQ(backend.last, "cs 10.0.0.1:80 enable");
  Handle(Request("POST", "/upstreams/cs/mode", "{\"read_only\": true}"), "", backend);
  EXPECT_EQ(backend.last, "cs on");
  Handle(Request("POST", "/upstreams/cs/mode", "{\"read_only\":false}"), "", backend);
  EXPECT_EQ(backend.last, "cs off");
  Handle(Request("POST", "/upstreams/cs/mode", "{ \"read_only\" : null }"), "", backend);
  EXPECT_EQ(backend.last, "cs auto");
  EXPECT_EQ(Handle(Request("POST", "/upstreams/cs/mode", "{\"read_only\": 1}"), "", backend).status,
            400);
  EXPECT_EQ(Handle(Request("POST", "/reload"), "", backend).status, 200);
  EXPECT_EQ(backend.reloads, 1);
  EXPECT_EQ(Handle(Request("POST", "/upstreams/cs/hosts/x/reboot"), "", backend).status, 404);
}

// The mode body is JSON, parsed as JSON: exactly {"read_only": true|false|null}.
TEST(AdminRouting, ModeBodyIsExactlyTheDocumentedJson) {
  FakeBackend backend;
  auto mode = [&](const std::string& body) {
    backend.last.clear();
    return Handle(Request("POST", "/upstreams/cs/mode", body), "", backend);
  };
  EXPECT_EQ(mode(" {\n \"read_only\" : true } \n").status, 200);
  EXPECT_EQ(backend.last, "cs on");
  for (const char* body : {
           "{\"read_only\": truex}",                       // a bad literal
           "{\"read_only\": true",                         // unterminated
           "{\"read_only\": true}}",                       // trailing bytes
           "{\"read_only\": true} {}",                     // a second value
           "{\"read_only\": \"true\"}",                    // a string
           "{\"read_only\": 1}",                           // a number
           "{\"read_only\": [true]}",                      // an array
           "{\"read_only\": true, \"extra\": 1}",          // another key
           "{\"read_only\": true, \"read_only\": false}",  // the key twice
           "{\"readonly\": true}",                         // no read_only
           "{}",
           "[]",
           "true",
           "null",
           "",
           "{\"read_only\": tru\u00e9}",
           "{\"read_only\": true /* comment */}",
       }) {
    AdminReply reply = mode(body);
    EXPECT_EQ(reply.status, 400) << body;
    EXPECT_EQ(reply.content_type, "application/json") << body;
    EXPECT_EQ(backend.last, "") << body;
    EXPECT_THAT(reply.body, ::testing::StartsWith("{\"error\":\"")) << body;
    EXPECT_THAT(reply.body, ::testing::HasSubstr("read_only")) << body;
  }
  // nlohmann's lexer stops at a NUL: what follows it must not be ignored.
  AdminReply with_nul = mode(std::string("{\"read_only\": true}\0garbage", 27));
  EXPECT_EQ(with_nul.status, 400);
  EXPECT_EQ(backend.last, "");
  // The error body is one JSON object (its quotes escaped).
  EXPECT_THAT(mode("{}").body,
              ::testing::HasSubstr("the one key \\\"read_only\\\"; send {\\\"read_only\\\": "
                                   "true|false|null}\"}"));
  // A nested read_only does not count.
  EXPECT_EQ(mode("{\"x\": {\"read_only\": true}}").status, 400);
}

// POST /reload answers when the reload is done (the file is parsed off the main thread);
// other calls are answered meanwhile.
TEST(AdminRouting, ReloadIsAnsweredWhenItIsDone) {
  FakeBackend backend;
  backend.hold_reloads = true;
  std::vector<AdminReply> replies;
  HandleAdminRequest(Request("POST", "/reload"), "", backend,
                     [&replies](AdminReply reply) { replies.push_back(reply); });
  EXPECT_TRUE(replies.empty());
  EXPECT_EQ(Handle(Request("GET", "/healthz"), "", backend).status, 200);
  ASSERT_EQ(backend.held.size(), 1u);
  backend.held[0](AdminReply{400, "application/json", "{\"error\":\"bad\"}\n"});
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].status, 400);
  // Refused calls never reach the backend and are answered at once.
  EXPECT_EQ(Handle(Request("POST", "/reload", "", false), "", backend).status, 403);
  EXPECT_EQ(backend.held.size(), 1u);
}

TEST(AdminRouting, AccessControl) {
  FakeBackend backend;
  // No token configured: loopback only.
  EXPECT_EQ(Handle(Request("POST", "/reload", "", false), "", backend).status, 403);
  // A token configured: it is required, from anywhere.
  EXPECT_EQ(Handle(Request("POST", "/reload", "", true), "s3cret", backend).status, 401);
  EXPECT_EQ(Handle(Request("POST", "/reload", "", false, "Bearer wrong"), "s3cret", backend).status,
            401);
  EXPECT_EQ(Handle(Request("POST", "/reload", "", false, "s3cret"), "s3cret", backend).status, 401);
  EXPECT_EQ(
      Handle(Request("POST", "/reload", "", false, "Bearer s3cret"), "s3cret", backend).status,
      200);
  EXPECT_EQ(backend.reloads, 1);
}

// A browser on the admin's host reaches 127.0.0.1 too: a page it shows can POST a form there,
// or rebind a name to it. Browsers mark those requests with Origin; tools do not send it.
TEST(AdminRouting, MutatingCallsFromWebPagesAreRefused) {
  FakeBackend backend;
  EXPECT_EQ(
      Handle(Request("POST", "/reload", "", true, "", "http://evil.example"), "", backend).status,
      403);
  EXPECT_EQ(Handle(Request("POST", "/upstreams/cs/mode", "{\"read_only\": true}", true, "", "null"),
                   "", backend)
                .status,
            403);
  EXPECT_EQ(Handle(Request("POST", "/reload", "", true, "Bearer s3cret", "http://127.0.0.1:9901"),
                   "s3cret", backend)
                .status,
            403);
  EXPECT_EQ(backend.reloads, 0);
  EXPECT_EQ(backend.last, "");
  // Reads are not state changes; a page may read them as any local process can.
  EXPECT_EQ(
      Handle(Request("GET", "/healthz", "", true, "", "http://evil.example"), "", backend).status,
      200);
}

TEST(ConstantTimeEquals, ComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

// A token file that never ends (a FIFO nobody writes, /dev/zero) must not hold start-up.
TEST(ReadAdminToken, OnlyASmallRegularFileIsRead) {
  char pattern[] = "/tmp/confgate-token-test-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  std::string directory = pattern;
  std::string token_file = directory + "/token";
  std::ofstream(token_file) << "  s3cret\n";
  EXPECT_EQ(*ReadAdminToken(token_file), "s3cret");
  std::ofstream(token_file) << std::string(kMaxAdminTokenFileBytes + 1, 't');
  EXPECT_THAT(ReadAdminToken(token_file).status().message(),
              ::testing::HasSubstr("admin.token_file: " + token_file +
                                   " is larger than the limit of 4 KiB"));
  std::string fifo = directory + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THAT(ReadAdminToken(fifo).status().message(), ::testing::HasSubstr("not a regular file"));
  EXPECT_THAT(ReadAdminToken("/dev/zero").status().message(),
              ::testing::HasSubstr("not a regular file"));
  std::filesystem::remove_all(directory);
}

}  // namespace
}  // namespace confgate::admin
