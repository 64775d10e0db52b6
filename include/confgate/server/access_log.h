// One JSON line per request. Workers only append to memory; the main thread writes the lines
// out (workers never do file I/O).
#pragma once

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "confgate/common/mutex.h"
#include "confgate/config/config.h"

namespace confgate::server {

struct AccessLogEntry {
  absl::Time start;
  std::string client;
  std::string method;
  std::string path;
  int status = 0;
  uint64_t bytes_sent = 0;  // response body bytes written to the client
  std::string upstream;     // empty when no upstream was involved
  std::string host;         // the host that answered, if any
  absl::Duration duration;
  std::string request_id;
};

// Serializes `entry` as one JSON object line (newline included).
std::string FormatAccessLogLine(const AccessLogEntry& entry);

class AccessLog {
 public:
  // `path`: "stdout", "stderr" or a file opened for append. Called on the main thread.
  absl::Status Open(const std::string& path);
  ~AccessLog();
  // Whether Open() would succeed for `config`, without creating the file (--check).
  static absl::Status CheckWritable(const config::AccessLogConfig& config);

  // Thread-safe; cheap.
  void Append(const AccessLogEntry& entry);
  // Writes everything appended so far. Main thread only.
  void Flush();

 private:
  int fd_ = -1;
  bool owns_fd_ = false;
  Mutex mu_;
  std::string pending_ ABSL_GUARDED_BY(mu_);
};

}  // namespace confgate::server
