#include "confgate/cache/snapshot.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "confgate/cache/policy.h"
#include "confgate/common/file.h"
#include "confgate/common/hash.h"
#include "confgate/http/header_map.h"

namespace confgate::cache {
namespace {

constexpr absl::string_view kMagic = "CONFGATE-CACHE\n";
constexpr uint32_t kVersion = 1;
constexpr uint64_t kMaxFieldBytes = 1ULL << 31;

void PutU64(std::string& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) {
    out.push_back(static_cast<char>(value >> (8 * i)));
  }
}

void PutString(std::string& out, absl::string_view value) {
  PutU64(out, value.size());
  out.append(value.data(), value.size());
}

// Reads fields from the payload; any read past the end marks the whole snapshot bad.
class Reader {
 public:
  explicit Reader(absl::string_view data) : data_(data) {}
  bool U64(uint64_t* value) {
    if (data_.size() < 8) {
      return false;
    }
    *value = 0;
    for (int i = 0; i < 8; ++i) {
      *value |= static_cast<uint64_t>(static_cast<unsigned char>(data_[i])) << (8 * i);
    }
    data_.remove_prefix(8);
    return true;
  }
  bool String(std::string* value) {
    uint64_t size = 0;
    if (!U64(&size) || size > kMaxFieldBytes || size > data_.size()) {
      return false;
    }
    value->assign(data_.data(), size);
    data_.remove_prefix(size);
    return true;
  }
  bool done() const { return data_.empty(); }

 private:
  absl::string_view data_;
};

}  // namespace

std::string EncodeSnapshot(const std::vector<CacheItem>& items) {
  std::string payload;
  PutU64(payload, kVersion);
  PutU64(payload, items.size());
  for (const CacheItem& item : items) {
    PutString(payload, item.primary_key);
    PutU64(payload, item.vary_names.size());
    for (const std::string& name : item.vary_names) {
      PutString(payload, name);
    }
    PutString(payload, item.vary_key);
    const CachedResponse& response = *item.response;
    PutU64(payload, static_cast<uint64_t>(response.status));
    PutU64(payload, response.headers.size());
    for (const http::HeaderMap::Entry& entry : response.headers.entries()) {
      PutString(payload, entry.name);
      PutString(payload, entry.value);
    }
    PutString(payload, response.body);
    PutU64(payload, static_cast<uint64_t>(absl::ToUnixNanos(response.stored_at)));
    PutU64(payload, static_cast<uint64_t>(absl::ToInt64Nanoseconds(response.initial_age)));
    PutU64(payload, static_cast<uint64_t>(absl::ToInt64Nanoseconds(response.fresh_for)));
  }
  std::string out(kMagic);
  PutU64(out, payload.size());
  out.append(payload);
  PutU64(out, Fnv1a64(payload));
  return out;
}

namespace {

// One entry's bytes. False only when the structure is broken (a read past the end): then the
// rest of the file cannot be trusted to line up either. What the bytes say is checked later.
bool ReadEntry(Reader& reader, CacheItem& item) {
  auto response = std::make_shared<CachedResponse>();
  uint64_t names = 0;
  uint64_t status = 0;
  uint64_t headers = 0;
  uint64_t stored_at = 0;
  uint64_t initial_age = 0;
  uint64_t fresh_for = 0;
  bool ok = reader.String(&item.primary_key) && reader.U64(&names) && names < 1024;
  for (uint64_t n = 0; ok && n < names; ++n) {
    item.vary_names.emplace_back();
    ok = reader.String(&item.vary_names.back());
  }
  ok = ok && reader.String(&item.vary_key) && reader.U64(&status) && reader.U64(&headers) &&
       headers < 4096;
  http::HeaderMap fields;
  for (uint64_t h = 0; ok && h < headers; ++h) {
    std::string name;
    std::string value;
    ok = reader.String(&name) && reader.String(&value);
    if (ok) {
      fields.Add(name, value);
    }
  }
  response->headers = fields;  // a copy holds just the bytes it needs
  ok = ok && reader.String(&response->body) && reader.U64(&stored_at) && reader.U64(&initial_age) &&
       reader.U64(&fresh_for);
  if (!ok) {
    return false;
  }
  // Out of range stays out of range: a status too large for an int stays over 599.
  response->status = static_cast<int>(std::min<uint64_t>(status, std::numeric_limits<int>::max()));
  response->stored_at = absl::FromUnixNanos(static_cast<int64_t>(stored_at));
  response->initial_age = absl::Nanoseconds(static_cast<int64_t>(initial_age));
  response->fresh_for = absl::Nanoseconds(static_cast<int64_t>(fresh_for));
  response->from_snapshot = true;
  item.response = std::move(response);
  return true;
}

}  // namespace

std::optional<std::string> WhySnapshotEntryInvalid(const CacheItem& item) {
  const CachedResponse& response = *item.response;
  if (response.status < 100 || response.status > 599) {
    return absl::StrCat("status ", response.status, " is not 100-599");
  }
  for (const http::HeaderMap::Entry& entry : response.headers.entries()) {
    // These fields go to clients as they are: a CR or LF in one would split the response.
    if (!http::IsValidFieldName(entry.name) || !http::IsValidFieldValue(entry.value)) {
      return "a field name or value is not valid field syntax";
    }
    // Never stored (hop-by-hop fields are removed before a response is kept): one here means
    // the file was not written by confgate, and framing is the serving path's alone to set.
    if (http::IsHopByHop(entry.id)) {
      return absl::StrCat("stored head has framing or hop-by-hop field ", entry.name);
    }
  }
  http::ResponseHead head;
  head.status = response.status;
  head.headers = response.headers;
  if (std::optional<std::string> why_not = WhyResponseNotStorable(head)) {
    return absl::StrCat("not storable: ", *why_not);
  }
  // The names the secondary key is built from must be the ones the head varies on, or one
  // variant would answer requests it was not fetched for.
  if (item.vary_names != VaryNames(head)) {
    return "Vary names do not match the stored head";
  }
  if (response.initial_age < absl::ZeroDuration() || response.fresh_for < absl::ZeroDuration()) {
    return "negative age or freshness lifetime";
  }
  return std::nullopt;
}

absl::StatusOr<DecodedSnapshot> DecodeSnapshot(absl::string_view data) {
  if (data.substr(0, kMagic.size()) != kMagic) {
    return absl::InvalidArgumentError("not a confgate cache snapshot");
  }
  data.remove_prefix(kMagic.size());
  Reader header(data);
  uint64_t payload_size = 0;
  if (!header.U64(&payload_size) || data.size() < 16 || data.size() - 16 != payload_size) {
    return absl::DataLossError("snapshot is truncated or has trailing bytes");
  }
  absl::string_view payload = data.substr(8, payload_size);
  Reader trailer(data.substr(8 + payload_size));
  uint64_t checksum = 0;
  if (!trailer.U64(&checksum) || checksum != Fnv1a64(payload)) {
    return absl::DataLossError("snapshot checksum mismatch");
  }
  Reader reader(payload);
  uint64_t version = 0;
  uint64_t count = 0;
  if (!reader.U64(&version) || version != kVersion) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported snapshot version ", version));
  }
  if (!reader.U64(&count)) {
    return absl::DataLossError("snapshot has no entry count");
  }
  DecodedSnapshot decoded;
  for (uint64_t i = 0; i < count; ++i) {
    CacheItem item;
    if (!ReadEntry(reader, item)) {
      return absl::DataLossError(absl::StrCat("snapshot entry ", i, " is malformed"));
    }
    if (std::optional<std::string> why = WhySnapshotEntryInvalid(item)) {
      decoded.dropped.push_back(absl::StrCat("entry ", i, ": ", *why));
      continue;
    }
    decoded.items.push_back(std::move(item));
  }
  if (!reader.done()) {
    return absl::DataLossError("snapshot has bytes after its last entry");
  }
  return decoded;
}

std::string SnapshotTempPath(const std::string& path) { return absl::StrCat(path, ".tmp"); }

absl::Status WriteSnapshotFile(const std::string& path, const std::vector<CacheItem>& items) {
  std::string data = EncodeSnapshot(items);
  // One temp name per path, so a writer killed mid-write leaves at most one file behind (and
  // the next write or start-up removes it). The name is predictable: whatever sits there (a
  // leftover of a crash, or a link planted in a shared directory) is removed, and O_EXCL |
  // O_NOFOLLOW then create a fresh file or fail, so we never write through a link.
  std::string temp = SnapshotTempPath(path);
  unlink(temp.c_str());
  int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot write ", temp, ": ", std::strerror(errno)));
  }
  size_t written = 0;
  while (written < data.size()) {
    ssize_t n = write(fd, data.data() + written, data.size() - written);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      int error = errno;
      close(fd);
      unlink(temp.c_str());
      return absl::UnavailableError(
          absl::StrCat("cannot write ", temp, ": ", std::strerror(error)));
    }
    written += static_cast<size_t>(n);
  }
  int synced = fsync(fd);
  int sync_error = errno;
  int closed = close(fd);  // whether or not the sync failed: the descriptor must not leak
  if (synced != 0 || closed != 0) {
    int error = synced != 0 ? sync_error : errno;
    unlink(temp.c_str());
    return absl::UnavailableError(absl::StrCat("cannot sync ", temp, ": ", std::strerror(error)));
  }
  if (rename(temp.c_str(), path.c_str()) != 0) {
    int error = errno;
    unlink(temp.c_str());
    return absl::UnavailableError(
        absl::StrCat("cannot rename to ", path, ": ", std::strerror(error)));
  }
  return absl::OkStatus();
}

absl::StatusOr<DecodedSnapshot> ReadSnapshotFile(const std::string& path, uint64_t max_bytes) {
  if (access(path.c_str(), F_OK) != 0 && errno == ENOENT) {
    return absl::NotFoundError(absl::StrCat("no snapshot at ", path));
  }
  // A regular file of bounded size only: the path may be pointed at a FIFO or a device.
  absl::StatusOr<std::string> data = ReadRegularFile(path, max_bytes);
  if (!data.ok()) {
    return data.status();
  }
  return DecodeSnapshot(*data);
}

int RemoveStaleSnapshotTemps(const std::string& path) {
  int removed = unlink(SnapshotTempPath(path).c_str()) == 0 ? 1 : 0;
  // Earlier versions named the temp file `<path>.tmp.<pid>`: one more file per kill.
  size_t slash = path.rfind('/');
  std::string directory = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  std::string prefix =
      absl::StrCat(slash == std::string::npos ? path : path.substr(slash + 1), ".tmp.");
  DIR* dir = opendir(directory.c_str());
  if (dir == nullptr) {
    return removed;
  }
  while (const dirent* entry = readdir(dir)) {
    absl::string_view name = entry->d_name;
    if (!absl::ConsumePrefix(&name, prefix) || name.empty() ||
        !std::all_of(name.begin(), name.end(), absl::ascii_isdigit)) {
      continue;
    }
    // unlinkat relative to the open directory: never follows a link, and a name cannot
    // point elsewhere.
    if (unlinkat(dirfd(dir), entry->d_name, 0) == 0) {
      ++removed;
    }
  }
  closedir(dir);
  return removed;
}

}  // namespace confgate::cache
