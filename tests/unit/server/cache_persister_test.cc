#include "server/cache_persister.h"

#include <unistd.h>

#include <filesystem>

#include "confgate/config/loader.h"
#include "gtest/gtest.h"

namespace confgate::server {
namespace {

RuntimeSnapshotPtr Snapshot(const std::string& cache, const RuntimeSnapshot* previous = nullptr) {
  config::LoadResult loaded = config::LoadConfigFromString(
      "listeners: [{address: 127.0.0.1:0}]\n"
      "upstreams: {cs: {servers: [{address: 127.0.0.1:1}]}}\n"
      "routes: [{match: {prefix: /}, upstream: cs" +
          cache + "}]\n",
      "test");
  EXPECT_TRUE(loaded.ok()) << (loaded.ok() ? "" : loaded.errors[0].ToString());
  absl::StatusOr<RuntimeSnapshotPtr> snapshot =
      BuildRuntimeSnapshot(loaded.config, previous, upstream::DnsResults{});
  EXPECT_TRUE(snapshot.ok());
  return *snapshot;
}

std::string Persisted(const std::string& path, const std::string& interval) {
  return ", cache: {enabled: true, persist: {path: " + path + ", interval: " + interval + "}}";
}

class CachePersisterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/confgate-persist-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    directory_ = pattern;
    path_ = directory_ + "/cache.snap";
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  event::Dispatcher dispatcher_;
  SimulatedTimeSource time_;
  std::string directory_;
  std::string path_;
};

// A reload every 0.5 s with a 1 s interval used to re-arm the timer each time: never written.
TEST_F(CachePersisterTest, AReloadDoesNotPushTheNextWriteOut) {
  CachePersister persister(dispatcher_, time_);
  MonotonicTime start = time_.Monotonic();
  RuntimeSnapshotPtr snapshot = Snapshot(Persisted(path_, "1s"));
  persister.Follow(*snapshot);
  ASSERT_TRUE(persister.due(path_).has_value());
  EXPECT_EQ(*persister.due(path_), start + std::chrono::seconds(1));
  for (int i = 0; i < 5; ++i) {
    time_.Advance(absl::Milliseconds(150));
    snapshot = Snapshot(Persisted(path_, "1s"), snapshot.get());
    persister.Follow(*snapshot);
    EXPECT_EQ(*persister.due(path_), start + std::chrono::seconds(1));
  }
  // A shorter interval brings the write forward; a longer one does not push it out.
  snapshot = Snapshot(Persisted(path_, "100ms"), snapshot.get());
  persister.Follow(*snapshot);
  EXPECT_EQ(*persister.due(path_), time_.Monotonic() + std::chrono::milliseconds(100));
  MonotonicTime due = *persister.due(path_);
  snapshot = Snapshot(Persisted(path_, "1h"), snapshot.get());
  persister.Follow(*snapshot);
  EXPECT_EQ(*persister.due(path_), due);
}

TEST_F(CachePersisterTest, NewPathsStartTheirScheduleAndDroppedPathsStop) {
  CachePersister persister(dispatcher_, time_);
  persister.Follow(*Snapshot(Persisted(path_, "1s")));
  time_.Advance(absl::Milliseconds(700));
  std::string other = directory_ + "/other.snap";
  persister.Follow(*Snapshot(Persisted(other, "1s")));
  EXPECT_FALSE(persister.due(path_).has_value());
  EXPECT_EQ(*persister.due(other), time_.Monotonic() + std::chrono::seconds(1));
  persister.Follow(*Snapshot(""));
  EXPECT_FALSE(persister.due(other).has_value());
}

TEST_F(CachePersisterTest, WriteAllWritesEveryFollowedCache) {
  CachePersister persister(dispatcher_, time_);
  persister.Follow(*Snapshot(Persisted(path_, "1h")));
  EXPECT_FALSE(std::filesystem::exists(path_));
  persister.WriteAll();
  EXPECT_TRUE(std::filesystem::exists(path_));
}

}  // namespace
}  // namespace confgate::server
