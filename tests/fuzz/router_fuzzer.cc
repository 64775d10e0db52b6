// Route matching on arbitrary methods, paths and queries against a fixed table.
#include <cstddef>
#include <cstdint>

#include "confgate/router/router.h"

namespace {

confgate::router::RouteTable& Table() {
  static confgate::router::RouteTable* table = [] {
    std::vector<confgate::config::RouteConfig> routes(3);
    routes[0].match.prefix = "/v1/kv/";
    routes[0].match.query = "index";
    routes[0].upstream = "a";
    routes[1].match.prefix = "/v3/kv/range";
    routes[1].match.methods = {"POST"};
    routes[1].upstream = "b";
    routes[2].match.prefix = "/";
    routes[2].upstream = "a";
    return new confgate::router::RouteTable(routes, {"a", "b"});
  }();
  return *table;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  size_t space = input.find(' ');
  absl::string_view method = input.substr(0, space);
  absl::string_view target = space == absl::string_view::npos ? "" : input.substr(space + 1);
  size_t question = target.find('?');
  absl::string_view path = target.substr(0, question);
  absl::string_view query = question == absl::string_view::npos ? "" : target.substr(question + 1);
  const confgate::router::Route* route = Table().Match(method, path, query);
  if (!path.empty() && path[0] == '/' && route == nullptr) {
    __builtin_trap();  // the catch-all must match every origin-form path
  }
  confgate::router::QueryParam(query, "index");
  return 0;
}
