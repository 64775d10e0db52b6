// The upstream file as hostile input: its size, what kind of file it is, several documents in
// it, and values too long to echo.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "confgate/config/loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace confgate::config {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kValid =
    "listeners: [{address: 127.0.0.1:0}]\n"
    "upstreams:\n"
    "  cs:\n"
    "    servers: [{address: 127.0.0.1:1}]\n"
    "routes: [{match: {prefix: /}, upstream: cs}]\n";

class FileInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/confgate-loader-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    directory_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  std::string Write(const std::string& content) {
    std::string path = directory_ + "/confgate.yaml";
    std::ofstream(path) << content;
    return path;
  }

  std::string directory_;
};

TEST_F(FileInputTest, AFileOverTheCapIsAnErrorNamingTheLimit) {
  std::string path = Write(std::string(kValid) + "# " + std::string(2000, 'x') + "\n");
  EXPECT_TRUE(LoadConfigFile(path).ok());
  LoadResult result = LoadConfigFile(path, 1024);
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_THAT(result.errors[0].ToString(), HasSubstr("larger than the limit of 1 KiB"));
  EXPECT_EQ(kMaxConfigFileBytes, 8u * 1024 * 1024);
}

TEST_F(FileInputTest, DevicesAndFifosAreRefusedAtOnce) {
  LoadResult zero = LoadConfigFile("/dev/zero");
  ASSERT_EQ(zero.errors.size(), 1u);
  EXPECT_THAT(zero.errors[0].ToString(), HasSubstr("not a regular file"));
  std::string fifo = directory_ + "/fifo.yaml";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  LoadResult from_fifo = LoadConfigFile(fifo);
  ASSERT_EQ(from_fifo.errors.size(), 1u);
  EXPECT_THAT(from_fifo.errors[0].ToString(), HasSubstr("not a regular file"));
}

TEST_F(FileInputTest, ASecondDocumentIsAnErrorNamingItsLine) {
  LoadResult result = LoadConfigFromString(std::string(kValid) + "---\nworkers: 2\n", "inline");
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_EQ(result.errors[0].line, 6);
  EXPECT_THAT(result.errors[0].message, HasSubstr("a second YAML document"));
  // A trailing "---" starts an (empty) document too.
  EXPECT_FALSE(LoadConfigFromString(std::string(kValid) + "---\n", "inline").ok());
  // One document, with its start and end markers, is fine.
  EXPECT_TRUE(LoadConfigFromString("---\n" + std::string(kValid) + "...\n", "inline").ok());
}

// A file of tiny nodes ("[1,1,1,...]") under the size cap would still take gigabytes as a
// tree: the nodes are counted first, without building them.
TEST_F(FileInputTest, TooManyNodesIsAnErrorBeforeTheTreeIsBuilt) {
  std::string many = std::string(kValid) + "x-padding: [";
  for (size_t i = 0; i <= kMaxConfigNodes; ++i) {
    many += "1,";
  }
  many += "1]\n";
  LoadResult result = LoadConfigFromString(many, "inline");
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_THAT(result.errors[0].message, HasSubstr("more than 200000 YAML nodes"));
  EXPECT_EQ(result.errors[0].line, 6);
  EXPECT_TRUE(LoadConfigFromString(kValid, "inline").ok());
}

TEST_F(FileInputTest, ErrorsQuoteAtMostAHundredBytesOfAValue) {
  std::string huge(1024 * 1024, 'v');
  std::string text = std::string(kValid) + "limits: {idle_timeout: " + huge + "}\n";
  text.replace(text.find("    servers"), 0, "    balancer: " + huge + "\n");
  text += std::string(1000, 'k') + ": 1\n";  // an unknown key (YAML allows 1024 bytes)
  LoadResult result = LoadConfigFromString(text, "inline");
  ASSERT_EQ(result.errors.size(), 3u) << result.errors[0].ToString().substr(0, 400);
  for (const ConfigError& error : result.errors) {
    EXPECT_LT(error.ToString().size(), 400u) << error.ToString().substr(0, 400);
  }
  EXPECT_THAT(result.errors[0].ToString(), HasSubstr("upstreams.cs.balancer"));
  EXPECT_THAT(result.errors[0].ToString(), HasSubstr("... (1048576 bytes)"));
  EXPECT_THAT(result.errors[1].ToString(), HasSubstr("... (1048576 bytes)"));
  EXPECT_THAT(result.errors[2].ToString(), HasSubstr("... (1000 bytes)"));
}

TEST_F(FileInputTest, LongUpstreamNamesAreShortenedInFieldPaths) {
  std::string name(4096, 'n');
  LoadResult result = LoadConfigFromString(
      "listeners: [{address: 127.0.0.1:0}]\n"
      "upstreams:\n  " +
          name +
          ":\n    servers: [{address: 127.0.0.1:1}]\n    balancer: nope\n"
          "routes: [{match: {prefix: /}, upstream: " +
          name + "}]\n",
      "inline");
  ASSERT_FALSE(result.ok());
  for (const ConfigError& error : result.errors) {
    EXPECT_THAT(error.ToString(), Not(HasSubstr(std::string(101, 'n'))));
  }
}

}  // namespace
}  // namespace confgate::config
