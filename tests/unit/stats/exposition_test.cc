#include "confgate/stats/exposition.h"

#include "gtest/gtest.h"

namespace confgate::stats {
namespace {

TEST(Exposition, RendersFamiliesInDeclarationOrderWithTheirSamples) {
  Exposition out;
  Exposition::FamilyId gauge =
      out.AddFamily("things_active", "Things now.", Exposition::Type::kGauge);
  Exposition::FamilyId counter =
      out.AddFamily("things_total", "Things ever.", Exposition::Type::kCounter);
  out.Add(counter, {{"kind", "a"}}, 3);
  out.Add(gauge, {}, 2);
  EXPECT_EQ(out.Render(),
            "# HELP confgate_things_active Things now.\n"
            "# TYPE confgate_things_active gauge\n"
            "confgate_things_active 2\n"
            "# HELP confgate_things_total Things ever.\n"
            "# TYPE confgate_things_total counter\n"
            "confgate_things_total{kind=\"a\"} 3\n");
}

TEST(Exposition, AHistogramIsCumulativeWithAnInfBucket) {
  LatencyHistogram histogram;
  histogram.Observe(absl::Microseconds(50));  // first bucket
  histogram.Observe(absl::Seconds(60));       // beyond the last bound
  Exposition out;
  out.AddHistogram(out.AddFamily("latency_seconds", "Latency.", Exposition::Type::kHistogram),
                   {{"upstream", "cs"}}, histogram);
  std::string text = out.Render();
  EXPECT_NE(text.find("confgate_latency_seconds_bucket{upstream=\"cs\",le=\"0.0001\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("confgate_latency_seconds_bucket{upstream=\"cs\",le=\"30\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("confgate_latency_seconds_bucket{upstream=\"cs\",le=\"+Inf\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("confgate_latency_seconds_count{upstream=\"cs\"} 2\n"), std::string::npos);
}

}  // namespace
}  // namespace confgate::stats
