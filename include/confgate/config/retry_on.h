// `retries.on` parsed once into bits: one per failure kind and one per status code, so the
// per-response check is a bit test, not a search of the strings the file spelled.
#pragma once

#include <bitset>
#include <cstddef>
#include <cstdint>

namespace confgate::config {

class RetryOn {
 public:
  enum class Condition : uint8_t { kConnectFailure, kReset, kTimeout };
  static constexpr int kMinStatus = 100;
  static constexpr int kMaxStatus = 599;

  // The file format's default: connect_failure, reset, timeout, 502, 503, 504.
  static RetryOn Defaults();

  void Add(Condition condition) { conditions_.set(static_cast<size_t>(condition)); }
  // `status` must be within [kMinStatus, kMaxStatus] (the loader checks it).
  void AddStatus(int status) { statuses_.set(static_cast<size_t>(status - kMinStatus)); }
  void Clear() {
    conditions_.reset();
    statuses_.reset();
  }

  bool Has(Condition condition) const { return conditions_.test(static_cast<size_t>(condition)); }
  bool HasStatus(int status) const {
    return status >= kMinStatus && status <= kMaxStatus &&
           statuses_.test(static_cast<size_t>(status - kMinStatus));
  }
  // How many conditions are set (kinds and statuses together).
  size_t size() const { return conditions_.count() + statuses_.count(); }

  bool operator==(const RetryOn& other) const = default;

 private:
  std::bitset<3> conditions_;
  std::bitset<kMaxStatus - kMinStatus + 1> statuses_;
};

}  // namespace confgate::config
