// The cache snapshot: its envelope (rejected whole when broken), its entries (each checked
// again like an upstream response, the invalid ones dropped), and the files it leaves.
#include "confgate/cache/snapshot.h"

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <iterator>

#include "confgate/common/time_source.h"
#include "gtest/gtest.h"

namespace confgate::cache {
namespace {

CachedResponsePtr MakeResponse(
    std::string body,
    std::initializer_list<std::pair<absl::string_view, absl::string_view>> extra = {}) {
  auto response = std::make_shared<CachedResponse>();
  http::HeaderMap fields;
  fields.Add("ETag", "\"1\"");
  fields.Add("Content-Type", "text/plain");
  for (const auto& [name, value] : extra) {
    fields.Add(name, value);
  }
  response->headers = fields;
  response->body = std::move(body);
  response->stored_at = absl::FromUnixSeconds(1'700'000'000);
  response->fresh_for = absl::Seconds(60);
  return response;
}

// The decoded entries' bodies, in order.
std::vector<std::string> Bodies(const DecodedSnapshot& snapshot) {
  std::vector<std::string> bodies;
  for (const CacheItem& item : snapshot.items) {
    bodies.push_back(item.response->body);
  }
  return bodies;
}

TEST(Snapshot, RoundTrip) {
  std::vector<CacheItem> items = {
      {"a", {}, "", MakeResponse("first")},
      {"b", {"x-tenant"}, "x-tenant=z\n", MakeResponse("second", {{"Vary", "X-Tenant"}})}};
  absl::StatusOr<DecodedSnapshot> decoded = DecodeSnapshot(EncodeSnapshot(items));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(decoded->dropped.empty());
  ASSERT_EQ(decoded->items.size(), 2u);
  const CacheItem& second = decoded->items[1];
  EXPECT_EQ(second.primary_key, "b");
  EXPECT_EQ(second.vary_names, std::vector<std::string>{"x-tenant"});
  EXPECT_EQ(second.vary_key, "x-tenant=z\n");
  EXPECT_EQ(second.response->body, "second");
  EXPECT_EQ(second.response->headers.size(), 3u);
  EXPECT_EQ(decoded->items[0].response->stored_at, items[0].response->stored_at);
  EXPECT_EQ(decoded->items[0].response->fresh_for, absl::Seconds(60));
}

TEST(Snapshot, TruncatedCorruptAndForeignFilesAreRejected) {
  std::string good = EncodeSnapshot({{"a", {}, "", MakeResponse("body")}});
  for (size_t cut = 0; cut < good.size(); cut += 7) {
    EXPECT_FALSE(DecodeSnapshot(good.substr(0, cut)).ok()) << "cut at " << cut;
  }
  for (size_t i = 15; i < good.size(); i += 5) {
    std::string corrupt = good;
    corrupt[i] ^= 0x20;
    EXPECT_FALSE(DecodeSnapshot(corrupt).ok()) << "flip at " << i;
  }
  EXPECT_FALSE(DecodeSnapshot("GIF89a....").ok());
  EXPECT_FALSE(DecodeSnapshot(good + "x").ok());
}

TEST(Snapshot, FileWriteIsAtomicAndReadable) {
  std::string path = ::testing::TempDir() + "/confgate-cache.snapshot";
  ASSERT_TRUE(WriteSnapshotFile(path, {{"a", {}, "", MakeResponse("on disk")}}).ok());
  absl::StatusOr<DecodedSnapshot> read = ReadSnapshotFile(path, 1 << 20);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(Bodies(*read), std::vector<std::string>{"on disk"});
  EXPECT_EQ(ReadSnapshotFile(path + ".missing", 1 << 20).status().code(),
            absl::StatusCode::kNotFound);
}

// The snapshot path is read like the upstream file: a regular file of bounded size only, so a
// path pointed at a device, a FIFO or a huge file cannot hang or exhaust start-up.
TEST(Snapshot, OnlyABoundedRegularFileIsRead) {
  EXPECT_FALSE(ReadSnapshotFile("/dev/zero", 1 << 20).ok());
  std::string fifo = ::testing::TempDir() + "/confgate-cache.fifo";
  unlink(fifo.c_str());
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_FALSE(ReadSnapshotFile(fifo, 1 << 20).ok());
  unlink(fifo.c_str());
  std::string path = ::testing::TempDir() + "/confgate-cache-large.snapshot";
  ASSERT_TRUE(WriteSnapshotFile(path, {{"a", {}, "", MakeResponse(std::string(4096, 'x'))}}).ok());
  EXPECT_TRUE(ReadSnapshotFile(path, 1 << 20).ok());
  EXPECT_FALSE(ReadSnapshotFile(path, 1024).ok());
  EXPECT_GT(MaxSnapshotFileBytes(64 << 20), uint64_t{128} << 20);
}

// One hostile entry between two good ones, with a valid checksum (EncodeSnapshot writes
// whatever it is given): the entry validation alone must drop it, and keep the others.
void ExpectDropped(const std::string& what, CacheItem hostile) {
  std::vector<CacheItem> items = {{"a", {}, "", MakeResponse("first")},
                                  std::move(hostile),
                                  {"c", {}, "", MakeResponse("last")}};
  absl::StatusOr<DecodedSnapshot> decoded = DecodeSnapshot(EncodeSnapshot(items));
  ASSERT_TRUE(decoded.ok()) << what << ": " << decoded.status();
  EXPECT_EQ(Bodies(*decoded), (std::vector<std::string>{"first", "last"})) << what;
  ASSERT_EQ(decoded->dropped.size(), 1u) << what;
  EXPECT_EQ(decoded->dropped[0].rfind("entry 1: ", 0), 0u) << decoded->dropped[0];
}

CacheItem With(std::function<void(CachedResponse&)> change) {
  auto response = std::make_shared<CachedResponse>(*MakeResponse("hostile"));
  change(*response);
  return {"b", {}, "", response};
}

CacheItem WithField(absl::string_view name, absl::string_view value) {
  return With([&](CachedResponse& response) { response.headers.Add(name, value); });
}

TEST(Snapshot, StatusesOutsideTheCacheRulesDropTheEntry) {
  for (int status : {-1, 0, 20, 99, 100, 101, 204, 206, 304, 404, 500, 600, 999}) {
    ExpectDropped(absl::StrCat("status ", status),
                  With([status](CachedResponse& response) { response.status = status; }));
  }
}

TEST(Snapshot, FramingAndHopByHopFieldsDropTheEntry) {
  ExpectDropped("Transfer-Encoding and Content-Length", With([](CachedResponse& response) {
                  response.headers.Add("Transfer-Encoding", "chunked");
                  response.headers.Add("Content-Length", "7");
                }));
  for (absl::string_view name :
       {"Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Proxy-Connection", "TE",
        "Trailer", "Upgrade", "Proxy-Authenticate", "content-length"}) {
    ExpectDropped(std::string(name), WithField(name, "7"));
  }
}

TEST(Snapshot, UnstorableHeadsDropTheEntry) {
  ExpectDropped("no-store", WithField("Cache-Control", "no-store"));
  ExpectDropped("private", WithField("Cache-Control", "private, max-age=60"));
  ExpectDropped("set-cookie", WithField("Set-Cookie", "session=forged"));
  ExpectDropped("vary star", WithField("Vary", "*"));
  // Vary names that are not the head's would let one variant answer another's requests.
  CacheItem unkeyed = WithField("Vary", "X-Tenant");
  ExpectDropped("Vary without its names", unkeyed);
  ExpectDropped("names without Vary", {"b", {"x-tenant"}, "x-tenant=a\n", MakeResponse("x")});
  ExpectDropped("negative age",
                With([](CachedResponse& response) { response.initial_age = absl::Seconds(-1); }));
  ExpectDropped("negative lifetime",
                With([](CachedResponse& response) { response.fresh_for = absl::Seconds(-1); }));
}

// A snapshot's header fields go to clients verbatim: one that could split a response (or is
// no field at all) drops its entry, however the file got its checksum.
TEST(Snapshot, HeaderFieldsThatCouldSplitAResponseDropTheEntry) {
  const std::pair<std::string, std::string> bad_fields[] = {
      {"X-A", "a\r\nSet-Cookie: session=forged"},
      {"X-A", "a\nb"},
      {"X-A", std::string("a\0b", 3)},
      {"X-A\r\nSet-Cookie", "x"},
      {"X A", "x"},
      {"", "x"},
  };
  for (const auto& [name, value] : bad_fields) {
    ExpectDropped(name + ": " + value, WithField(name, value));
  }
}

// Times on disk come from a wall clock that may have moved (or from whoever wrote the file):
// a loaded entry is stale until an upstream answer replaces it, and its Age is never negative.
TEST(Snapshot, LoadedEntriesAreStaleUntilRevalidated) {
  SimulatedTimeSource clock;
  auto just_stored = std::make_shared<CachedResponse>(*MakeResponse("now"));
  just_stored->stored_at = clock.SystemTime();
  just_stored->fresh_for = absl::Hours(1);
  auto from_the_future = std::make_shared<CachedResponse>(*just_stored);
  from_the_future->stored_at = clock.SystemTime() + absl::Hours(24 * 3650);
  from_the_future->body = "future";
  ASSERT_TRUE(just_stored->Fresh(clock.SystemTime()));
  absl::StatusOr<DecodedSnapshot> decoded =
      DecodeSnapshot(EncodeSnapshot({{"a", {}, "", just_stored}, {"b", {}, "", from_the_future}}));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->items.size(), 2u);
  clock.Advance(absl::Seconds(1));
  for (const CacheItem& item : decoded->items) {
    EXPECT_TRUE(item.response->from_snapshot);
    EXPECT_FALSE(item.response->Fresh(clock.SystemTime())) << item.response->body;
    EXPECT_GE(item.response->Age(clock.SystemTime()), absl::ZeroDuration());
  }
  EXPECT_EQ(decoded->items[0].response->Age(clock.SystemTime()), absl::Seconds(1));
  EXPECT_EQ(decoded->items[1].response->Age(clock.SystemTime()), absl::ZeroDuration());
}

TEST(Snapshot, FileIsPrivateToTheProcessUser) {
  std::string path = ::testing::TempDir() + "/confgate-private.snapshot";
  unlink(path.c_str());
  mode_t previous = umask(0);  // the mode must come from confgate, not from a lucky umask
  absl::Status written = WriteSnapshotFile(path, {{"a", {}, "", MakeResponse("private")}});
  umask(previous);
  ASSERT_TRUE(written.ok()) << written;
  struct stat info {};
  ASSERT_EQ(lstat(path.c_str(), &info), 0);
  EXPECT_TRUE(S_ISREG(info.st_mode));
  EXPECT_EQ(info.st_mode & 0777, 0600u);
}

// The temp name (path.tmp) is predictable; in a directory others can write, a link planted
// there must not make confgate overwrite the file it points to.
TEST(Snapshot, WriteDoesNotFollowALinkAtTheTempName) {
  std::string directory = ::testing::TempDir() + "/confgate-snapshot-link";
  mkdir(directory.c_str(), 0700);
  std::string path = directory + "/cache.snapshot";
  std::string victim = directory + "/victim";
  std::string temp = path + ".tmp";
  unlink(path.c_str());
  unlink(temp.c_str());
  {
    std::ofstream out(victim, std::ios::trunc);
    out << "precious";
  }
  ASSERT_EQ(symlink(victim.c_str(), temp.c_str()), 0);
  ASSERT_TRUE(WriteSnapshotFile(path, {{"a", {}, "", MakeResponse("cached")}}).ok());
  std::ifstream in(victim);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "precious");
  struct stat info {};
  ASSERT_EQ(lstat(path.c_str(), &info), 0);
  EXPECT_TRUE(S_ISREG(info.st_mode)) << "the snapshot must be a file of its own, not the link";
  absl::StatusOr<DecodedSnapshot> read = ReadSnapshotFile(path, 1 << 20);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(Bodies(*read), std::vector<std::string>{"cached"});
}

// The names in `directory` that start with `prefix`.
std::vector<std::string> FilesStartingWith(const std::string& directory,
                                           const std::string& prefix) {
  std::vector<std::string> names;
  DIR* dir = opendir(directory.c_str());
  while (const dirent* entry = dir != nullptr ? readdir(dir) : nullptr) {
    if (std::string(entry->d_name).rfind(prefix, 0) == 0) {
      names.push_back(entry->d_name);
    }
  }
  if (dir != nullptr) {
    closedir(dir);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// A writer killed mid-write, in a process of its own: the file size limit stops it with
// SIGXFSZ after 4 KiB, as a kill would, leaving its temp file behind.
void WriteAndGetKilled(const std::string& path) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    rlimit no_core{0, 0};
    rlimit four_kib{4096, 4096};
    setrlimit(RLIMIT_CORE, &no_core);
    signal(SIGXFSZ, SIG_DFL);
    setrlimit(RLIMIT_FSIZE, &four_kib);
    (void)WriteSnapshotFile(path, {{"a", {}, "", MakeResponse(std::string(1 << 16, 'x'))}});
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ) << status;
}

// Each kill used to leave a `<path>.tmp.<pid>` of its own (81 MiB after six kills): one temp
// name per path leaves at most one file, and start-up removes it (and old-style leftovers).
TEST(Snapshot, KilledWritersLeaveOneTempFileThatStartUpRemoves) {
  std::string directory = ::testing::TempDir() + "/confgate-snapshot-killed";
  mkdir(directory.c_str(), 0700);
  std::string path = directory + "/cache.snapshot";
  for (const std::string& name : FilesStartingWith(directory, "cache.snapshot")) {
    unlink((directory + "/" + name).c_str());
  }
  ASSERT_TRUE(WriteSnapshotFile(path, {{"a", {}, "", MakeResponse("last good")}}).ok());
  WriteAndGetKilled(path);
  WriteAndGetKilled(path);
  EXPECT_EQ(FilesStartingWith(directory, "cache.snapshot.tmp"),
            std::vector<std::string>{"cache.snapshot.tmp"});
  for (const char* name : {"cache.snapshot.tmp.4242", "cache.snapshot.tmp.other"}) {
    std::ofstream(directory + "/" + name) << "left over";
  }
  EXPECT_EQ(RemoveStaleSnapshotTemps(path), 2);
  // Only the snapshot, and a file that merely shares the prefix, are left.
  EXPECT_EQ(FilesStartingWith(directory, "cache.snapshot"),
            (std::vector<std::string>{"cache.snapshot", "cache.snapshot.tmp.other"}));
  absl::StatusOr<DecodedSnapshot> read = ReadSnapshotFile(path, 1 << 20);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(Bodies(*read), std::vector<std::string>{"last good"});
  EXPECT_EQ(RemoveStaleSnapshotTemps(path), 0);
}

// The fuzzer's seeds (tests/fuzz/make_cache_snapshot_seeds.py) must pass the envelope checks
// so that the fuzzer starts at the entries: each hostile seed decodes, minus what it plants.
TEST(Snapshot, FuzzSeedsReachTheEntryValidation) {
  std::string directory = std::string(CONFGATE_SOURCE_DIR) + "/tests/fuzz/corpus/cache_snapshot";
  std::vector<std::string> seeds = FilesStartingWith(directory, "");
  int checked = 0;
  for (const std::string& name : seeds) {
    if (name == "." || name == ".." || name == "magic") {
      continue;
    }
    std::ifstream in(directory + "/" + name, std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    absl::StatusOr<DecodedSnapshot> decoded = DecodeSnapshot(data);
    ASSERT_TRUE(decoded.ok()) << name << ": " << decoded.status();
    EXPECT_EQ(decoded->dropped.empty(), name == "valid") << name;
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

}  // namespace
}  // namespace confgate::cache
