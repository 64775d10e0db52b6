#include "confgate/common/file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace confgate {
namespace {

using ::testing::HasSubstr;

class ReadRegularFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/confgate-file-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    directory_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  std::string Write(const std::string& name, const std::string& content) {
    std::string path = directory_ + "/" + name;
    std::ofstream(path) << content;
    return path;
  }

  std::string directory_;
};

TEST_F(ReadRegularFileTest, ReadsARegularFileUpToTheLimit) {
  std::string path = Write("ok", "abcdef");
  absl::StatusOr<std::string> text = ReadRegularFile(path, 6);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "abcdef");
  EXPECT_EQ(*ReadRegularFile(Write("empty", ""), 6), "");
}

TEST_F(ReadRegularFileTest, AFileOverTheLimitNamesTheLimit) {
  absl::StatusOr<std::string> text = ReadRegularFile(Write("big", std::string(9000, 'x')), 8192);
  ASSERT_FALSE(text.ok());
  EXPECT_THAT(text.status().message(), HasSubstr("larger than the limit of 8 KiB"));
}

// /dev/zero never ends and a FIFO without a writer would block the open: both fail at once.
TEST_F(ReadRegularFileTest, DevicesFifosAndDirectoriesFailAtOnce) {
  absl::StatusOr<std::string> zero = ReadRegularFile("/dev/zero", 1024);
  ASSERT_FALSE(zero.ok());
  EXPECT_THAT(zero.status().message(), HasSubstr("not a regular file"));
  std::string fifo = directory_ + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  absl::StatusOr<std::string> from_fifo = ReadRegularFile(fifo, 1024);
  ASSERT_FALSE(from_fifo.ok());
  EXPECT_THAT(from_fifo.status().message(), HasSubstr("not a regular file"));
  EXPECT_FALSE(ReadRegularFile(directory_, 1024).ok());
  absl::StatusOr<std::string> missing = ReadRegularFile(directory_ + "/missing", 1024);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("cannot read"));
}

TEST_F(ReadRegularFileTest, FollowsSymbolicLinksToRegularFiles) {
  std::string target = Write("target", "token");
  std::string link = directory_ + "/link";
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  EXPECT_EQ(*ReadRegularFile(link, 100), "token");
}

TEST(Shortened, LongTextIsCutWithAMarkerAndItsLength) {
  EXPECT_EQ(QuoteShortened("short"), "\"short\"");
  EXPECT_EQ(Shortened("short"), "short");
  std::string long_text(50 * 1024 * 1024, 'a');
  std::string quoted = QuoteShortened(long_text);
  EXPECT_EQ(quoted, "\"" + std::string(100, 'a') + "\"... (52428800 bytes)");
  EXPECT_EQ(Shortened(long_text, 10), "aaaaaaaaaa... (52428800 bytes)");
}

TEST(Shortened, NeverSplitsAUtf8Character) {
  // "é" is two bytes; a cut at byte 3 would split the second one.
  EXPECT_EQ(Shortened("\xC3\xA9\xC3\xA9\xC3\xA9", 3), "\xC3\xA9... (6 bytes)");
}

TEST(FormatByteLimit, UsesTheLargestWholeUnit) {
  EXPECT_EQ(FormatByteLimit(8 * 1024 * 1024), "8 MiB");
  EXPECT_EQ(FormatByteLimit(4096), "4 KiB");
  EXPECT_EQ(FormatByteLimit(100), "100 bytes");
}

}  // namespace
}  // namespace confgate
