#include "confgate/server/access_log.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace confgate::server {
namespace {

AccessLogEntry MakeEntry() {
  AccessLogEntry entry;
  entry.start = absl::FromUnixSeconds(1'700'000'000);
  entry.client = "10.0.0.7";
  entry.method = "GET";
  entry.path = "/v1/kv/app \"quoted\"";
  entry.status = 200;
  entry.bytes_sent = 42;
  entry.upstream = "config-service";
  entry.host = "127.0.0.1:8081";
  entry.duration = absl::Microseconds(1500);
  entry.request_id = "abc";
  return entry;
}

TEST(AccessLog, FormatsOneJsonObjectPerLine) {
  EXPECT_EQ(FormatAccessLogLine(MakeEntry()),
            "{\"ts\":\"2023-11-14T22:13:20+00:00\",\"client\":\"10.0.0.7\",\"method\":\"GET\","
            "\"path\":\"/v1/kv/app \\\"quoted\\\"\",\"status\":200,\"bytes\":42,"
            "\"upstream\":\"config-service\",\"host\":\"127.0.0.1:8081\",\"duration_ms\":1.500,"
            "\"request_id\":\"abc\"}\n");
}

TEST(AccessLog, ControlCharactersCannotSplitALine) {
  AccessLogEntry entry = MakeEntry();
  entry.path = "/a\nforged line\r";
  std::string line = FormatAccessLogLine(entry);
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  EXPECT_EQ(line.find('\r'), std::string::npos);
}

// A request path may hold any byte: well-formed UTF-8 is written as it is, every other byte as
// \u00XX, so each line stays valid JSON (a parser that rejects the line loses the request).
TEST(AccessLog, InvalidUtf8IsEscapedAndValidUtf8Kept) {
  AccessLogEntry entry = MakeEntry();
  entry.path =
      "/a\x80\xff"
      "\xc3\xa9"          // é
      "\xe2\x82\xac"      // €
      "\xf0\x9f\x98\x80"  // U+1F600
      "\xc0\xaf"          // overlong '/'
      "\xed\xa0\x80"      // a surrogate
      "\xf4\x90\x80\x80"  // past U+10FFFF
      "\xe2\x82";         // cut short
  std::string line = FormatAccessLogLine(entry);
  EXPECT_NE(line.find("\"path\":\"/a\\u0080\\u00ff\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
                      "\\u00c0\\u00af\\u00ed\\u00a0\\u0080\\u00f4\\u0090\\u0080\\u0080"
                      "\\u00e2\\u0082\""),
            std::string::npos)
      << line;
}

TEST(AccessLog, AppendsToAFileOnFlush) {
  char path[] = "/tmp/confgate-access-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    AccessLog log;
    ASSERT_TRUE(log.Open(path).ok());
    log.Append(MakeEntry());
    log.Append(MakeEntry());
    log.Flush();
  }
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  std::string contents = text.str();
  EXPECT_EQ(std::count(contents.begin(), contents.end(), '\n'), 2);
  EXPECT_EQ(contents.rfind("{\"ts\":", 0), 0u);
  std::remove(path);
}

TEST(AccessLog, UnopenableFileIsAnError) {
  AccessLog log;
  absl::Status status = log.Open("/nonexistent-dir/access.log");
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("access_log.path"), std::string::npos);
}

}  // namespace
}  // namespace confgate::server
