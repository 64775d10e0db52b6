// The process: main thread (signals, access-log writer, drain) plus the worker threads.
#pragma once

#include <string>

#include "confgate/config/config.h"

namespace confgate::server {

// Builds the runtime objects, opens the listeners, runs until SIGTERM/SIGINT and a drain.
// `config_path` is read again on reload (SIGHUP, POST /reload, or a change in its directory).
// Returns the process exit code.
int RunServer(const config::Config& config, const std::string& config_path);

}  // namespace confgate::server
