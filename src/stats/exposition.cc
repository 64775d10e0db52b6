#include "confgate/stats/exposition.h"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <limits>
#include <sstream>

#include "confgate/common/log.h"

namespace confgate::stats {
namespace {

prometheus::MetricType ToPrometheus(Exposition::Type type) {
  switch (type) {
    case Exposition::Type::kCounter:
      return prometheus::MetricType::Counter;
    case Exposition::Type::kGauge:
      return prometheus::MetricType::Gauge;
    case Exposition::Type::kHistogram:
      return prometheus::MetricType::Histogram;
  }
  return prometheus::MetricType::Untyped;
}

}  // namespace

Exposition::FamilyId Exposition::AddFamily(const std::string& name, const std::string& help,
                                           Type type) {
  families_.push_back(Family{"confgate_" + name, help, type, {}});
  return families_.size() - 1;
}

void Exposition::Add(FamilyId family, Labels labels, double value) {
  Sample sample;
  sample.labels = std::move(labels);
  sample.value = value;
  families_[family].samples.push_back(std::move(sample));
}

void Exposition::AddHistogram(FamilyId family, Labels labels, const LatencyHistogram& histogram) {
  Sample sample;
  sample.labels = std::move(labels);
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= LatencyHistogram::kBounds.size(); ++i) {
    cumulative += histogram.bucket(i);
    sample.cumulative.push_back(cumulative);
  }
  sample.sum = histogram.sum_seconds();
  families_[family].samples.push_back(std::move(sample));
}

std::string Exposition::Render() const {
  std::vector<prometheus::MetricFamily> families;
  for (const Family& family : families_) {
    prometheus::MetricFamily out{family.name, family.help, ToPrometheus(family.type), {}};
    for (const Sample& sample : family.samples) {
      prometheus::ClientMetric metric;
      for (const auto& [name, value] : sample.labels) {
        metric.label.push_back({name, value});
      }
      switch (family.type) {
        case Type::kCounter:
          metric.counter.value = sample.value;
          break;
        case Type::kGauge:
          metric.gauge.value = sample.value;
          break;
        case Type::kHistogram:
          for (size_t i = 0; i < sample.cumulative.size(); ++i) {
            prometheus::ClientMetric::Bucket bucket;
            bucket.cumulative_count = sample.cumulative[i];
            bucket.upper_bound = i < LatencyHistogram::kBounds.size()
                                     ? LatencyHistogram::kBounds[i]
                                     : std::numeric_limits<double>::infinity();
            metric.histogram.bucket.push_back(bucket);
          }
          metric.histogram.sample_count = sample.cumulative.empty() ? 0 : sample.cumulative.back();
          metric.histogram.sample_sum = sample.sum;
          break;
      }
      out.metric.push_back(std::move(metric));
    }
    families.push_back(std::move(out));
  }
  try {
    std::ostringstream text;
    prometheus::TextSerializer().Serialize(text, families);
    return text.str();
  } catch (const std::exception& e) {
    Log(LogLevel::kError, "metrics serialization failed", {{"error", e.what()}});
    return "";
  }
}

}  // namespace confgate::stats
