// The process: main thread (signals, access-log writer, drain) plus the worker threads.
#pragma once

#include "confgate/config/config.h"

namespace confgate::server {

// Builds the runtime objects, opens the listeners, runs until SIGTERM/SIGINT and a drain.
// Returns the process exit code.
int RunServer(const config::Config& config);

}  // namespace confgate::server
