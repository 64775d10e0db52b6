#include "confgate/common/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace confgate {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;

class FileCloser {
 public:
  explicit FileCloser(int fd) : fd_(fd) {}
  ~FileCloser() { close(fd_); }

 private:
  int fd_;
};

// Where to cut `text` (longer than `max_bytes`): backed up to the first byte of a UTF-8
// sequence, never past three continuation bytes.
size_t CutPoint(absl::string_view text, size_t max_bytes) {
  size_t cut = max_bytes;
  for (int i = 0; i < 3 && cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80; ++i) {
    --cut;
  }
  return cut;
}

}  // namespace

std::string FormatByteLimit(uint64_t bytes) {
  if (bytes >= kMiB && bytes % kMiB == 0) {
    return absl::StrCat(bytes / kMiB, " MiB");
  }
  if (bytes >= kKiB && bytes % kKiB == 0) {
    return absl::StrCat(bytes / kKiB, " KiB");
  }
  return absl::StrCat(bytes, " bytes");
}

std::string Shortened(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) {
    return std::string(text);
  }
  return absl::StrCat(text.substr(0, CutPoint(text, max_bytes)), "... (", text.size(), " bytes)");
}

std::string QuoteShortened(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) {
    return absl::StrCat("\"", text, "\"");
  }
  return absl::StrCat("\"", text.substr(0, CutPoint(text, max_bytes)), "\"... (", text.size(),
                      " bytes)");
}

absl::StatusOr<std::string> ReadRegularFile(const std::string& path, uint64_t max_bytes) {
  std::string name = Shortened(path, 200);
  // O_NONBLOCK: opening a FIFO without a writer would otherwise wait for one.
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot read ", name, ": ", std::strerror(errno)));
  }
  FileCloser closer(fd);
  struct stat info {};
  if (fstat(fd, &info) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot read ", name, ": ", std::strerror(errno)));
  }
  if (!S_ISREG(info.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", name, ": not a regular file (a pipe, device or directory)"));
  }
  auto too_large = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " is larger than the limit of ", FormatByteLimit(max_bytes)));
  };
  if (static_cast<uint64_t>(info.st_size) > max_bytes) {
    return too_large();
  }
  std::string content;
  content.resize(static_cast<size_t>(info.st_size) + 1);  // one more byte sees a grown file
  size_t length = 0;
  while (true) {
    if (length == content.size()) {
      if (length > max_bytes) {
        return too_large();
      }
      content.resize(std::min<uint64_t>(max_bytes + 1, content.size() * 2 + 4096));
    }
    ssize_t n = read(fd, content.data() + length, content.size() - length);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return absl::UnavailableError(absl::StrCat("cannot read ", name, ": ", std::strerror(errno)));
    }
    if (n == 0) {
      break;
    }
    length += static_cast<size_t>(n);
  }
  if (length > max_bytes) {
    return too_large();
  }
  content.resize(length);
  return content;
}

}  // namespace confgate
