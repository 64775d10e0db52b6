// The one pipeline (Load -> Validate -> Build) that --check, start-up and reloads share.
#include "confgate/server/config_pipeline.h"

#include <filesystem>
#include <fstream>

#include "confgate/server/access_log.h"
#include "confgate/server/server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace confgate::server {
namespace {

using ::testing::HasSubstr;

constexpr const char* kValid = R"(listeners: [{address: "127.0.0.1:0"}]
admin: {address: "127.0.0.1:0"}
workers: 2
upstreams:
  cs:
    servers: [{address: "127.0.0.1:8081"}]
routes: [{match: {prefix: /}, upstream: cs}]
)";

class ConfigPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/confgate-pipeline-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    directory_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  std::string Write(const std::string& name, const std::string& text) {
    std::string path = directory_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  std::string directory_;
};

TEST_F(ConfigPipelineTest, AValidFileIsBuilt) {
  PreparedConfig prepared = ConfigPipeline(Write("ok.yaml", kValid)).Prepare();
  ASSERT_TRUE(prepared.ok()) << prepared.errors[0].ToString();
  ASSERT_NE(prepared.snapshot, nullptr);
  EXPECT_EQ(prepared.snapshot->clusters.size(), 1u);
  EXPECT_FALSE(prepared.process_settings_kept);
}

TEST_F(ConfigPipelineTest, SchemaErrorsStopBeforeBuild) {
  std::string path = Write("bad.yaml", std::string(kValid) + "bogus: 1\n");
  PreparedConfig prepared = ConfigPipeline(path).Prepare();
  ASSERT_EQ(prepared.errors.size(), 1u);
  EXPECT_EQ(prepared.errors[0].ToString(),
            "bogus: line 8: unknown key \"bogus\" (expected one of: listeners, admin, workers, "
            "limits, access_log, upstreams, routes)");
  EXPECT_EQ(prepared.snapshot, nullptr);
}

// An access log path naming a directory passes parse and validate, and the old --check said ok;
// start-up then failed to open it. --check now runs the same checks as start-up and rejects it
// with start-up's own message.
TEST_F(ConfigPipelineTest, AnAccessLogThatStartUpCannotOpenIsRejected) {
  std::string path =
      Write("dir.yaml", std::string(kValid) + "access_log: {path: " + directory_ + "}\n");
  config::LoadResult validated = ConfigPipeline(path).LoadAndValidate();
  ASSERT_TRUE(validated.ok());  // parse + validate pass: it is the Build step that refuses it
  PreparedConfig prepared = ConfigPipeline(path).Prepare();
  ASSERT_EQ(prepared.errors.size(), 1u);
  EXPECT_EQ(prepared.snapshot, nullptr);
  AccessLog access_log;
  absl::Status at_start_up = access_log.Open(directory_);
  ASSERT_FALSE(at_start_up.ok());
  EXPECT_EQ(prepared.errors[0].ToString(), at_start_up.message());
}

TEST_F(ConfigPipelineTest, AnUnreadableAdminTokenIsRejectedAtStartUpButKeptOnReload) {
  std::string path = Write("ok.yaml", kValid);
  ConfigPipeline pipeline(path);
  PreparedConfig running = pipeline.Prepare();
  ASSERT_TRUE(running.ok());
  config::Config next = running.snapshot->config;
  next.admin.token_file = directory_ + "/missing.token";
  next.workers = 7;
  // A new process must read the token: refused.
  PreparedConfig fresh = pipeline.Build(next, nullptr, {}, true);
  ASSERT_EQ(fresh.errors.size(), 1u);
  EXPECT_THAT(fresh.errors[0].message, HasSubstr("admin.token_file: cannot read"));
  // A reload keeps the running process settings (a restart changes them): built, kept.
  PreparedConfig reloaded = pipeline.Build(next, running.snapshot.get(), {}, true);
  ASSERT_TRUE(reloaded.ok()) << reloaded.errors[0].ToString();
  EXPECT_TRUE(reloaded.process_settings_kept);
  EXPECT_EQ(reloaded.snapshot->config.workers, 2u);
  EXPECT_EQ(reloaded.snapshot->config.admin.token_file, "");
}

TEST(TriggerPolicy, OnlyADnsRefreshSkipsTheFileAndTheLookups) {
  for (config::ReloadTrigger trigger :
       {config::ReloadTrigger::kSignal, config::ReloadTrigger::kFileWatch,
        config::ReloadTrigger::kAdmin}) {
    TriggerPolicy policy = PolicyOf(trigger);
    EXPECT_TRUE(policy.reads_file) << config::ReloadTriggerName(trigger);
    EXPECT_TRUE(policy.resolves_missing_names) << config::ReloadTriggerName(trigger);
    EXPECT_TRUE(policy.counts_as_reload) << config::ReloadTriggerName(trigger);
  }
  TriggerPolicy dns = PolicyOf(config::ReloadTrigger::kDnsRefresh);
  EXPECT_FALSE(dns.reads_file);
  EXPECT_FALSE(dns.resolves_missing_names);
  EXPECT_FALSE(dns.counts_as_reload);
}

TEST(KeepProcessSettings, OnlyAChangeIsReported) {
  config::Config running;
  running.workers = 2;
  config::Config same = running;
  EXPECT_FALSE(KeepProcessSettings(running, same));
  config::Config next = running;
  next.workers = 4;
  next.access_log.path = "/var/log/other.log";
  next.limits.max_connections = 5;
  EXPECT_TRUE(KeepProcessSettings(running, next));
  EXPECT_EQ(next.workers, 2u);
  EXPECT_EQ(next.access_log.path, "stdout");
  EXPECT_EQ(next.limits.max_connections, 5u);  // not a process setting: taken
}

TEST(DiffListeners, AddedAndRemovedByAddress) {
  auto listener = [](const std::string& host, uint16_t port) {
    config::ListenerConfig listener;
    listener.address = {host, port};
    return listener;
  };
  ListenerChanges changes = DiffListeners({listener("127.0.0.1", 80), listener("::1", 81)},
                                          {listener("127.0.0.1", 80), listener("127.0.0.1", 82)});
  ASSERT_EQ(changes.added.size(), 1u);
  EXPECT_EQ(changes.added[0].address.ToString(), "127.0.0.1:82");
  EXPECT_EQ(changes.removed, (std::vector<std::string>{"[::1]:81"}));
}

}  // namespace
}  // namespace confgate::server
