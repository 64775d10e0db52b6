#include "confgate/config/loader.h"

#include <filesystem>
#include <sstream>

#include "confgate/config/units.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace confgate::config {
namespace {

using ::testing::HasSubstr;

std::string TestData(const std::string& name) {
  return std::string(CONFGATE_TESTDATA_DIR) + "/config/" + name;
}

TEST(LoadConfig, DesignExampleLoadsWithEveryValue) {
  LoadResult result = LoadConfigFile(std::string(CONFGATE_SOURCE_DIR) + "/conf/confgate.yaml");
  ASSERT_TRUE(result.ok()) << result.errors[0].ToString();
  const Config& config = result.config;
  ASSERT_EQ(config.listeners.size(), 1u);
  EXPECT_EQ(config.listeners[0].address.ToString(), "0.0.0.0:8080");
  EXPECT_EQ(config.workers, 0u);  // auto
  EXPECT_EQ(config.limits.max_request_header_bytes, 32u * 1024);
  EXPECT_EQ(config.limits.max_request_body_bytes, 8u * 1024 * 1024);
  EXPECT_EQ(config.limits.header_timeout, absl::Seconds(10));
  EXPECT_EQ(config.limits.drain_timeout, absl::Seconds(15));
  ASSERT_EQ(config.upstreams.size(), 1u);
  const UpstreamConfig& upstream = config.upstreams[0];
  EXPECT_EQ(upstream.name, "config-service");
  ASSERT_EQ(upstream.servers.size(), 3u);
  EXPECT_EQ(upstream.servers[0].weight, 2u);
  EXPECT_TRUE(upstream.servers[2].backup);
  EXPECT_EQ(upstream.servers[1].address.port, 8082);
  ASSERT_TRUE(upstream.health_check.has_value());
  EXPECT_DOUBLE_EQ(upstream.health_check->jitter_fraction, 0.1);
  EXPECT_EQ(upstream.health_check->expected_statuses[0].high, 399);
  ASSERT_TRUE(upstream.outlier_detection.has_value());
  EXPECT_EQ(upstream.outlier_detection->max_ejection_time, absl::Seconds(300));
  EXPECT_EQ(upstream.retries.on.size(), 6u);
  EXPECT_EQ(upstream.timeouts.connect, absl::Seconds(1));
  EXPECT_EQ(upstream.keepalive.max_idle_per_worker, 64u);
  ASSERT_EQ(config.routes.size(), 3u);
  EXPECT_EQ(config.routes[0].kind, RouteKind::kWatch);
  EXPECT_EQ(config.routes[0].match.query, "index");
  EXPECT_EQ(config.routes[0].response_timeout, absl::Seconds(600));
  EXPECT_EQ(config.routes[1].match.methods, std::vector<std::string>{"POST"});
  EXPECT_EQ(config.routes[2].kind, RouteKind::kAuto);
  ASSERT_TRUE(config.routes[2].cache.has_value());
  EXPECT_EQ(config.routes[2].cache->max_stale, absl::Hours(24));
}

TEST(LoadConfig, EveryShippedConfigPasses) {
  int files = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(CONFGATE_SOURCE_DIR) + "/conf")) {
    if (entry.path().extension() != ".yaml") {
      continue;
    }
    ++files;
    LoadResult result = LoadConfigFile(entry.path());
    EXPECT_TRUE(result.ok()) << entry.path() << ": " << result.errors[0].ToString();
  }
  EXPECT_GE(files, 2);
}

struct BadFile {
  const char* file;
  const char* field_path;
  int line;
  const char* message;
};

class BadConfig : public ::testing::TestWithParam<BadFile> {};

TEST_P(BadConfig, ReportsFieldLineAndReason) {
  const BadFile& bad = GetParam();
  LoadResult result = LoadConfigFile(TestData(bad.file));
  ASSERT_FALSE(result.ok());
  const ConfigError& error = result.errors[0];
  EXPECT_EQ(error.field_path, bad.field_path);
  EXPECT_EQ(error.line, bad.line);
  EXPECT_THAT(error.message, HasSubstr(bad.message));
}

INSTANTIATE_TEST_SUITE_P(
    EveryErrorClass, BadConfig,
    ::testing::Values(
        BadFile{"bad_unknown_key.yaml", "upstreams.cs.colour", 6, "unknown key \"colour\""},
        BadFile{"bad_address_without_port.yaml", "upstreams.config-service.servers[1].address", 7,
                "\"10.0.0.1\" has no port"},
        BadFile{"bad_bad_duration.yaml", "limits.header_timeout", 3, "needs a unit"},
        BadFile{"bad_bad_size.yaml", "limits.max_request_body_bytes", 3, "unknown unit \"MB\""},
        BadFile{"bad_duplicate_upstream.yaml", "upstreams.cs", 6, "duplicate upstream name"},
        BadFile{"bad_unknown_upstream.yaml", "routes[0].upstream", 7,
                "unknown upstream \"elsewhere\""},
        BadFile{"bad_empty_servers.yaml", "upstreams.cs.servers", 5, "non-empty list"},
        BadFile{"bad_unknown_balancer.yaml", "upstreams.cs.balancer", 5,
                "unknown balancer \"fastest\""},
        BadFile{"bad_maglev_without_hash_key.yaml", "upstreams.cs.hash_key", 4,
                "is required by the maglev balancer"},
        BadFile{"bad_bad_hash_key.yaml", "upstreams.cs.hash_key", 6,
                "\"body\" is not header:NAME, cookie:NAME, path or client_ip"},
        BadFile{"bad_bad_port.yaml", "upstreams.cs.servers[0].address", 5, "invalid port"},
        BadFile{"bad_bad_kind.yaml", "routes[0].kind", 7, "unknown kind \"stream\""},
        BadFile{"bad_bad_prefix.yaml", "routes[0].match.prefix", 7, "must start with /"},
        BadFile{"bad_bad_weight.yaml", "upstreams.cs.servers[0].weight", 5, "from 1 to 1000"},
        BadFile{"bad_missing_listeners.yaml", "listeners", 0, "is required"},
        BadFile{"bad_yaml_syntax.yaml", "", 6, "YAML syntax error"},
        BadFile{"bad_bad_workers.yaml", "workers", 3, "\"many\""},
        BadFile{"bad_dns_server.yaml", "upstreams.cs.servers[0].dns", 5, "has no port"},
        BadFile{"bad_listener_tls.yaml", "listeners[0].tls", 3,
                "needs both certificate and private_key"},
        BadFile{"bad_upstream_tls_without_ca.yaml", "upstreams.cs.tls.ca_file", 6,
                "insecure_skip_verify"},
        BadFile{"bad_bad_retry_condition.yaml", "upstreams.cs.retries.on[1]", 6, "\"sometimes\""},
        BadFile{"bad_bad_method.yaml", "routes[0].match.methods[0]", 7, "uppercase"}),
    [](const ::testing::TestParamInfo<BadFile>& info) {
      std::string name = info.param.file;
      name = name.substr(4, name.size() - 9);  // bad_<name>.yaml
      return name;
    });

TEST(LoadConfig, EveryBadFileFails) {
  int files = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(CONFGATE_TESTDATA_DIR) + "/config")) {
    if (entry.path().filename().string().rfind("bad_", 0) != 0) {
      continue;
    }
    ++files;
    EXPECT_FALSE(LoadConfigFile(entry.path()).ok()) << entry.path();
  }
  EXPECT_GE(files, 20);
}

TEST(LoadConfig, ReportsEveryProblemAtOnceInLineOrder) {
  LoadResult result = LoadConfigFile(TestData("bad_many_problems.yaml"));
  std::vector<std::string> paths;
  for (const ConfigError& error : result.errors) {
    paths.push_back(error.field_path);
  }
  EXPECT_EQ(paths, (std::vector<std::string>{
                       "listeners[0].address", "workers", "upstreams.cs.balancer",
                       "upstreams.cs.servers[0].weight", "upstreams.cs.timeouts.connect",
                       "routes[0].kind", "routes[0].upstream"}));
  for (size_t i = 1; i < result.errors.size(); ++i) {
    EXPECT_LE(result.errors[i - 1].line, result.errors[i].line);
  }
}

TEST(LoadConfig, ErrorToStringNamesPathAndLine) {
  ConfigError error{"upstreams.config-service.servers[1].address", 14, "\"10.0.0.1\" has no port"};
  EXPECT_EQ(error.ToString(),
            "upstreams.config-service.servers[1].address: line 14: \"10.0.0.1\" has no port");
}

TEST(LoadConfig, RoutesMayComeBeforeUpstreams) {
  LoadResult result = LoadConfigFromString(R"(routes:
  - {match: {prefix: /}, upstream: cs}
listeners: [{address: "[::1]:0"}]
upstreams:
  cs: {servers: [{address: "[::1]:8081"}]}
)",
                                           "inline");
  ASSERT_TRUE(result.ok()) << result.errors[0].ToString();
  EXPECT_EQ(result.config.listeners[0].address.host, "::1");
  EXPECT_EQ(result.config.upstreams[0].servers[0].address.ToString(), "[::1]:8081");
}

TEST(LoadConfig, TotalTimeoutOnUpstreamsAndRoutes) {
  LoadResult result = LoadConfigFromString(R"(listeners: [{address: "127.0.0.1:0"}]
upstreams:
  cs: {servers: [{address: "127.0.0.1:8081"}], timeouts: {response: 7s, total: 10s}}
routes:
  - {match: {prefix: /v3/}, upstream: cs, timeouts: {response: 2s, total: 3s}}
  - {match: {prefix: /}, upstream: cs}
)",
                                           "inline");
  ASSERT_TRUE(result.ok()) << result.errors[0].ToString();
  EXPECT_EQ(result.config.upstreams[0].timeouts.total, absl::Seconds(10));
  EXPECT_EQ(result.config.routes[0].total_timeout, absl::Seconds(3));
  EXPECT_EQ(result.config.routes[0].response_timeout, absl::Seconds(2));
  EXPECT_EQ(result.config.routes[1].total_timeout, std::nullopt);  // the upstream's then

  LoadResult zero = LoadConfigFromString(R"(listeners: [{address: "127.0.0.1:0"}]
upstreams:
  cs: {servers: [{address: "127.0.0.1:8081"}]}
routes:
  - {match: {prefix: /}, upstream: cs, timeouts: {total: 0s}}
)",
                                         "inline");
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.errors[0].field_path, "routes[0].timeouts.total");
}

// docs/security.md relies on these: a file that says nothing gets an admin listener only this
// host can reach, and bounded requests.
TEST(LoadConfig, SecurityRelevantDefaults) {
  LoadResult result = LoadConfigFromString(R"(listeners: [{address: "127.0.0.1:0"}]
upstreams:
  cs: {servers: [{address: "127.0.0.1:8081"}]}
routes:
  - {match: {prefix: /}, upstream: cs}
)",
                                           "inline");
  ASSERT_TRUE(result.ok()) << result.errors[0].ToString();
  const Config& config = result.config;
  EXPECT_EQ(config.admin.address.ToString(), "127.0.0.1:9901");
  EXPECT_EQ(config.admin.token_file, "");
  EXPECT_EQ(config.limits.max_request_header_bytes, 32u * 1024);
  EXPECT_EQ(config.limits.max_request_body_bytes, 8u * 1024 * 1024);
  EXPECT_EQ(config.limits.header_timeout, absl::Seconds(10));
  EXPECT_EQ(config.limits.idle_timeout, absl::Seconds(60));
  EXPECT_EQ(config.limits.max_connections, 10000u);
}

LoadResult LoadInline(const std::string& upstream_extra, const std::string& routes) {
  return LoadConfigFromString(
      "listeners: [{address: \"127.0.0.1:0\"}]\n"
      "upstreams:\n"
      "  cs:\n"
      "    servers: [{address: \"127.0.0.1:8081\"}]\n" +
          upstream_extra + "routes:\n" + routes,
      "inline");
}

TEST(LoadConfig, PanicThresholdAndReadOnlyAfter) {
  LoadResult defaults = LoadInline("", "  - {match: {prefix: /}, upstream: cs}\n");
  ASSERT_TRUE(defaults.ok()) << defaults.errors[0].ToString();
  EXPECT_DOUBLE_EQ(defaults.config.upstreams[0].panic_threshold, 0.5);
  EXPECT_EQ(defaults.config.upstreams[0].read_only_after, absl::Seconds(3));

  LoadResult set = LoadInline("    panic_threshold: 0%\n    read_only_after: 0s\n",
                              "  - {match: {prefix: /}, upstream: cs}\n");
  ASSERT_TRUE(set.ok()) << set.errors[0].ToString();
  EXPECT_DOUBLE_EQ(set.config.upstreams[0].panic_threshold, 0);
  EXPECT_EQ(set.config.upstreams[0].read_only_after, absl::ZeroDuration());

  LoadResult bad = LoadInline("    panic_threshold: 150%\n    read_only_after: soon\n",
                              "  - {match: {prefix: /}, upstream: cs}\n");
  ASSERT_EQ(bad.errors.size(), 2u);
  EXPECT_EQ(bad.errors[0].field_path, "upstreams.cs.panic_threshold");
  EXPECT_EQ(bad.errors[1].field_path, "upstreams.cs.read_only_after");
}

TEST(LoadConfig, WatchMaxHoldAndQueryValues) {
  LoadResult result =
      LoadInline("", R"(  - match: {prefix: /v2/keys/, methods: [GET], query: {wait: "true"}}
    upstream: cs
    kind: watch
    watch: {protocol: none, max_hold: 90s}
  - match: {prefix: /v1/kv/, query: index}
    upstream: cs
    kind: watch
  - {match: {prefix: /}, upstream: cs}
)");
  ASSERT_TRUE(result.ok()) << result.errors[0].ToString();
  const RouteConfig& etcd = result.config.routes[0];
  EXPECT_EQ(etcd.match.query, "wait");
  EXPECT_EQ(etcd.match.query_value, std::optional<std::string>("true"));
  EXPECT_EQ(etcd.watch.max_hold, absl::Seconds(90));
  const RouteConfig& consul = result.config.routes[1];
  EXPECT_EQ(consul.match.query, "index");
  EXPECT_FALSE(consul.match.query_value.has_value());
  EXPECT_EQ(consul.watch.max_hold, absl::ZeroDuration());  // unlimited by default

  struct Bad {
    const char* routes;
    const char* path;
    const char* message;
  };
  for (const Bad& bad : {
           Bad{"  - {match: {prefix: /, query: {a: 1, b: 2}}, upstream: cs}\n",
               "routes[0].match.query", "one parameter"},
           Bad{"  - {match: {prefix: /}, upstream: cs, kind: watch, watch: {protocol: etcd3}}\n",
               "routes[0].watch.protocol", "unknown watch protocol"},
           Bad{"  - {match: {prefix: /}, upstream: cs, kind: watch, watch: {max_hold: 1x}}\n",
               "routes[0].watch.max_hold", ""},
           Bad{"  - {match: {prefix: /}, upstream: cs, kind: read, watch: {max_hold: 1s}}\n",
               "routes[0].watch", "only by kind: watch"},
       }) {
    LoadResult loaded = LoadInline("", bad.routes);
    ASSERT_FALSE(loaded.ok()) << bad.routes;
    EXPECT_EQ(loaded.errors[0].field_path, bad.path) << bad.routes;
    EXPECT_THAT(loaded.errors[0].message, HasSubstr(bad.message)) << bad.routes;
  }
}

// What `confgate --check` prints for the file alone (the binary adds the rest of the pipeline).
int RunConfigCheck(const std::string& path, std::ostream& out) {
  return WriteCheckReport(path, LoadConfigFile(path).errors, out);
}

TEST(RunConfigCheck, ExitCodesAndOutput) {
  std::ostringstream good;
  EXPECT_EQ(RunConfigCheck(std::string(CONFGATE_SOURCE_DIR) + "/conf/demo.yaml", good), 0);
  EXPECT_THAT(good.str(), HasSubstr(": ok"));
  std::ostringstream bad;
  EXPECT_EQ(RunConfigCheck(TestData("bad_many_problems.yaml"), bad), 1);
  EXPECT_THAT(bad.str(), HasSubstr("7 problems"));
  std::ostringstream missing;
  EXPECT_EQ(RunConfigCheck(TestData("does-not-exist.yaml"), missing), 1);
  EXPECT_THAT(missing.str(), HasSubstr("cannot read"));
}

TEST(Units, Durations) {
  std::string error;
  EXPECT_EQ(ParseDuration("1500ms", &error), absl::Milliseconds(1500));
  EXPECT_EQ(ParseDuration("2s", &error), absl::Seconds(2));
  EXPECT_EQ(ParseDuration("1m", &error), absl::Minutes(1));
  EXPECT_EQ(ParseDuration("24h", &error), absl::Hours(24));
  EXPECT_EQ(ParseDuration("0.5s", &error), absl::Milliseconds(500));
  EXPECT_FALSE(ParseDuration("10", &error).has_value());
  EXPECT_THAT(error, HasSubstr("needs a unit"));
  EXPECT_FALSE(ParseDuration("10d", &error).has_value());
  EXPECT_FALSE(ParseDuration("s", &error).has_value());
  EXPECT_FALSE(ParseDuration("-1s", &error).has_value());
}

TEST(Units, Sizes) {
  std::string error;
  EXPECT_EQ(ParseSize("4096", &error), 4096u);
  EXPECT_EQ(ParseSize("64KiB", &error), 64u * 1024);
  EXPECT_EQ(ParseSize("8MiB", &error), 8u * 1024 * 1024);
  EXPECT_EQ(ParseSize("1GiB", &error), 1024u * 1024 * 1024);
  EXPECT_FALSE(ParseSize("8MB", &error).has_value());
  EXPECT_FALSE(ParseSize("1.5", &error).has_value());
  EXPECT_FALSE(ParseSize("", &error).has_value());
}

TEST(Units, Percent) {
  std::string error;
  EXPECT_DOUBLE_EQ(*ParsePercent("10%", &error), 0.1);
  EXPECT_FALSE(ParsePercent("10", &error).has_value());
  EXPECT_FALSE(ParsePercent("150%", &error).has_value());
}

}  // namespace
}  // namespace confgate::config
