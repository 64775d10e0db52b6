// The Prometheus text exposition, over plain data: callers declare families and add samples
// at scrape time from the counters their components keep (never a registry lookup per
// request). What the figures mean belongs to the components; this knows only the format.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "confgate/stats/counters.h"

namespace confgate::stats {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Exposition {
 public:
  enum class Type { kCounter, kGauge, kHistogram };
  using FamilyId = size_t;

  // Declares a family named "confgate_" + `name`; families render in declaration order.
  FamilyId AddFamily(const std::string& name, const std::string& help, Type type);
  // One counter or gauge sample.
  void Add(FamilyId family, Labels labels, double value);
  void AddHistogram(FamilyId family, Labels labels, const LatencyHistogram& histogram);

  // Text format 0.0.4. prometheus-cpp's exceptions stop here (an empty body and a log line).
  std::string Render() const;

 private:
  struct Sample {
    Labels labels;
    double value = 0;
    std::vector<uint64_t> cumulative;  // histograms: per bucket, +Inf last
    double sum = 0;
  };
  struct Family {
    std::string name;
    std::string help;
    Type type;
    std::vector<Sample> samples;
  };
  std::vector<Family> families_;
};

}  // namespace confgate::stats
