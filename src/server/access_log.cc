#include "confgate/server/access_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "confgate/common/log.h"

namespace confgate::server {

std::string FormatAccessLogLine(const AccessLogEntry& entry) {
  std::string line = "{\"ts\":";
  AppendJsonString(absl::FormatTime(absl::RFC3339_full, entry.start, absl::UTCTimeZone()), line);
  line.append(",\"client\":");
  AppendJsonString(entry.client, line);
  line.append(",\"method\":");
  AppendJsonString(entry.method, line);
  line.append(",\"path\":");
  AppendJsonString(entry.path, line);
  absl::StrAppend(&line, ",\"status\":", entry.status, ",\"bytes\":", entry.bytes_sent);
  line.append(",\"upstream\":");
  AppendJsonString(entry.upstream, line);
  line.append(",\"host\":");
  AppendJsonString(entry.host, line);
  absl::StrAppendFormat(&line, ",\"duration_ms\":%.3f", absl::ToDoubleMilliseconds(entry.duration));
  line.append(",\"request_id\":");
  AppendJsonString(entry.request_id, line);
  line.append("}\n");
  return line;
}

absl::Status AccessLog::Open(const std::string& path) {
  if (path == "stdout") {
    fd_ = STDOUT_FILENO;
  } else if (path == "stderr") {
    fd_ = STDERR_FILENO;
  } else {
    fd_ = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd_ < 0) {
      return absl::UnavailableError(
          absl::StrCat("access_log.path: cannot open ", path, ": ", std::strerror(errno)));
    }
    owns_fd_ = true;
  }
  return absl::OkStatus();
}

absl::Status AccessLog::CheckWritable(const config::AccessLogConfig& config) {
  const std::string& path = config.path;
  if (!config.enabled || path == "stdout" || path == "stderr") {
    return absl::OkStatus();
  }
  // An existing file must be writable; a new one needs a writable directory to be created in.
  size_t slash = path.rfind('/');
  std::string directory = slash == std::string::npos ? "." : path.substr(0, slash);
  struct stat status;
  bool exists = stat(path.c_str(), &status) == 0;
  if (exists && S_ISDIR(status.st_mode)) {
    // Writable, but open() for writing fails on it at start-up.
    return absl::UnavailableError(
        absl::StrCat("access_log.path: cannot open ", path, ": ", std::strerror(EISDIR)));
  }
  if (access(exists ? path.c_str() : (directory.empty() ? "/" : directory.c_str()), W_OK) != 0) {
    return absl::UnavailableError(
        absl::StrCat("access_log.path: cannot open ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

AccessLog::~AccessLog() {
  Flush();
  if (owns_fd_) {
    close(fd_);
  }
}

void AccessLog::Append(const AccessLogEntry& entry) {
  std::string line = FormatAccessLogLine(entry);
  MutexLock lock(&mu_);
  pending_.append(line);
}

void AccessLog::Flush() {
  std::string batch;
  {
    MutexLock lock(&mu_);
    batch.swap(pending_);
  }
  size_t written = 0;
  while (fd_ >= 0 && written < batch.size()) {
    ssize_t n = write(fd_, batch.data() + written, batch.size() - written);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;  // a broken log pipe must not stop the proxy
    }
    written += static_cast<size_t>(n);
  }
}

}  // namespace confgate::server
