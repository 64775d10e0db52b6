// confgate: a reverse proxy and load balancer for configuration services.
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <utility>

#include "confgate/common/log.h"
#include "confgate/config/loader.h"
#include "confgate/event/libevent_memory.h"
#include "confgate/server/config_pipeline.h"
#include "confgate/server/server.h"

namespace {

constexpr const char* kVersion = "0.1.0";

void PrintUsage(std::ostream& out) {
  out << "usage: confgate -c FILE [--check] [--log-level LEVEL]\n"
         "  -c, --config FILE        the upstream file (YAML)\n"
         "      --check              validate FILE, print every problem, exit 0 (ok) or 1\n"
         "      --log-level LEVEL    debug, info (default), warn or error: the least severe\n"
         "                           process-log lines written to stderr\n"
         "      --version            print the version\n"
         "  -h, --help               this text\n";
}

}  // namespace

int main(int argc, char** argv) {
  confgate::event::UseBlockCacheForLibevent();  // before anything else touches libevent
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-c" || arg == "--config") {
      if (i + 1 >= argc) {
        std::cerr << "confgate: " << arg << " needs a file\n";
        return 2;
      }
      config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      config_path = arg.substr(std::strlen("--config="));
    } else if (arg == "--check") {
      check_only = true;
    } else if (arg == "--log-level" || arg.rfind("--log-level=", 0) == 0) {
      std::string name;
      if (arg == "--log-level") {
        if (i + 1 >= argc) {
          std::cerr << "confgate: --log-level needs a level (debug, info, warn, error)\n";
          return 2;
        }
        name = argv[++i];
      } else {
        name = arg.substr(std::strlen("--log-level="));
      }
      std::optional<confgate::LogLevel> level = confgate::ParseLogLevel(name);
      if (!level.has_value()) {
        std::cerr << "confgate: unknown log level \"" << name << "\" (debug, info, warn, error)\n";
        return 2;
      }
      confgate::SetMinLogLevel(*level);
    } else if (arg == "--version") {
      std::cout << "confgate " << kVersion << "\n";
      return 0;
    } else if (arg == "-h" || arg == "--help") {
      PrintUsage(std::cout);
      return 0;
    } else {
      std::cerr << "confgate: unknown argument \"" << arg << "\"\n";
      PrintUsage(std::cerr);
      return 2;
    }
  }
  if (config_path.empty()) {
    std::cerr << "confgate: no config file given\n";
    PrintUsage(std::cerr);
    return 2;
  }
  // --check and start-up run the same pipeline (only binding sockets is left to start-up).
  confgate::server::ConfigPipeline pipeline(config_path);
  confgate::server::PreparedConfig prepared = pipeline.Prepare();
  if (check_only) {
    return confgate::config::WriteCheckReport(config_path, prepared.errors, std::cout);
  }
  if (!prepared.ok()) {
    for (const confgate::config::ConfigError& error : prepared.errors) {
      confgate::Log(confgate::LogLevel::kError, "invalid config",
                    {{"file", config_path}, {"error", error.ToString()}});
    }
    return 1;
  }
  confgate::server::Server server(pipeline, std::move(prepared));
  return server.Run();
}
