#include "confgate/router/router.h"

#include "gtest/gtest.h"

namespace confgate::router {
namespace {

config::RouteConfig MakeRoute(std::string prefix, std::string upstream, config::RouteKind kind,
                              std::vector<std::string> methods = {}, std::string query = "") {
  config::RouteConfig route;
  route.match.prefix = std::move(prefix);
  route.match.methods = std::move(methods);
  route.match.query = std::move(query);
  route.upstream = std::move(upstream);
  route.kind = kind;
  return route;
}

class RouteTableTest : public ::testing::Test {
 protected:
  RouteTable table_{{MakeRoute("/v1/kv/", "consul", config::RouteKind::kWatch, {}, "index"),
                     MakeRoute("/v3/kv/range", "etcd", config::RouteKind::kRead, {"POST"}),
                     MakeRoute("/", "consul", config::RouteKind::kAuto)},
                    {"consul", "etcd"}};
};

TEST_F(RouteTableTest, FirstMatchWinsInFileOrder) {
  const Route* route = table_.Match("GET", "/v1/kv/app", "index=7&wait=30s");
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(route->kind, config::RouteKind::kWatch);
  EXPECT_EQ(route->upstream_index, 0u);
}

TEST(RouteTable, QueryValueMatch) {
  config::RouteConfig watch =
      MakeRoute("/v2/keys/", "etcd", config::RouteKind::kWatch, {"GET"}, "wait");
  watch.match.query_value = "true";
  RouteTable table({watch, MakeRoute("/", "etcd", config::RouteKind::kAuto)}, {"etcd"});
  const Route* route = table.Match("GET", "/v2/keys/a", "recursive=true&wait=true");
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(route->kind, config::RouteKind::kWatch);
  // wait=false is a read; so are a bare `wait`, another value, and a parameter that only ends
  // in "wait".
  for (const char* query : {"wait=false", "wait", "wait=", "wait=truex", "nowait=true"}) {
    route = table.Match("GET", "/v2/keys/a", query);
    ASSERT_NE(route, nullptr) << query;
    EXPECT_EQ(route->kind, config::RouteKind::kAuto) << query;
  }
}

TEST_F(RouteTableTest, QueryParameterMustBePresent) {
  const Route* route = table_.Match("GET", "/v1/kv/app", "wait=30s");
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(route->kind, config::RouteKind::kAuto);
  // A parameter whose name merely starts with "index" does not count.
  route = table_.Match("GET", "/v1/kv/app", "indexes=1");
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(route->kind, config::RouteKind::kAuto);
}

TEST_F(RouteTableTest, MethodListRestrictsMatch) {
  const Route* post = table_.Match("POST", "/v3/kv/range", "");
  ASSERT_NE(post, nullptr);
  EXPECT_EQ(post->upstream, "etcd");
  EXPECT_EQ(post->upstream_index, 1u);
  const Route* get = table_.Match("GET", "/v3/kv/range", "");
  ASSERT_NE(get, nullptr);
  EXPECT_EQ(get->upstream, "consul");
}

TEST(RouteTable, NoMatchReturnsNull) {
  RouteTable table({MakeRoute("/api/", "a", config::RouteKind::kRead)}, {"a"});
  EXPECT_EQ(table.Match("GET", "/other", ""), nullptr);
  EXPECT_NE(table.Match("GET", "/api/x", ""), nullptr);
}

TEST(Route, AutoKindFollowsMethod) {
  Route route;
  route.kind = config::RouteKind::kAuto;
  EXPECT_EQ(route.KindFor("GET"), RequestKind::kRead);
  EXPECT_EQ(route.KindFor("HEAD"), RequestKind::kRead);
  EXPECT_EQ(route.KindFor("PUT"), RequestKind::kWrite);
  EXPECT_EQ(route.KindFor("POST"), RequestKind::kWrite);
  EXPECT_EQ(route.KindFor("DELETE"), RequestKind::kWrite);
  route.kind = config::RouteKind::kRead;
  EXPECT_EQ(route.KindFor("POST"), RequestKind::kRead);
  route.kind = config::RouteKind::kWatch;
  EXPECT_EQ(route.KindFor("GET"), RequestKind::kWatch);
}

TEST(Query, ParamValues) {
  EXPECT_EQ(QueryParam("index=7&wait=30s", "wait").value_or("none"), "30s");
  EXPECT_EQ(QueryParam("wait", "wait").value_or("none"), "");
  EXPECT_FALSE(QueryParam("", "wait").has_value());
  EXPECT_FALSE(QueryParam("waiting=1", "wait").has_value());
  EXPECT_TRUE(QueryHasParam("a=1&index=", "index"));
}

}  // namespace
}  // namespace confgate::router
