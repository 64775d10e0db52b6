#include "confgate/mode/mode.h"

#include "gtest/gtest.h"

namespace confgate::mode {
namespace {

TEST(ComputeMode, FromAvailability) {
  EXPECT_EQ(ComputeMode(true, true, std::nullopt), UpstreamMode::kNormal);
  EXPECT_EQ(ComputeMode(true, false, std::nullopt), UpstreamMode::kNormal);
  EXPECT_EQ(ComputeMode(false, true, std::nullopt), UpstreamMode::kFailover);
  EXPECT_EQ(ComputeMode(false, false, std::nullopt), UpstreamMode::kReadOnly);
}

TEST(ComputeMode, OperatorOverride) {
  EXPECT_EQ(ComputeMode(true, true, true), UpstreamMode::kReadOnly);
  EXPECT_EQ(ComputeMode(false, false, false), UpstreamMode::kNormal);
  EXPECT_EQ(ComputeMode(false, true, false), UpstreamMode::kFailover);
}

TEST(UpstreamModeName, MatchesTheGaugeValues) {
  EXPECT_STREQ(UpstreamModeName(UpstreamMode::kNormal), "normal");
  EXPECT_STREQ(UpstreamModeName(UpstreamMode::kFailover), "failover");
  EXPECT_STREQ(UpstreamModeName(UpstreamMode::kReadOnly), "read_only");
  EXPECT_EQ(static_cast<int>(UpstreamMode::kReadOnly), 2);
}

}  // namespace
}  // namespace confgate::mode
