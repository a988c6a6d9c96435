// Counters and a latency histogram for the simulator's reports.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace coapfleet::sim {

/// Log-linear latency histogram over microseconds (HDR-style): exact below
/// 128 us, then 64 sub-buckets per power of two (relative error < 1.6 %),
/// up to ~2^40 us. Fixed memory, O(1) record.
class latency_histogram {
public:
  void record(uint64_t micros);
  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0; }
  /// The value at quantile q in [0,1] (upper edge of its bucket, at most max()).
  uint64_t quantile(double q) const;
  void merge(const latency_histogram& o);

  static constexpr unsigned sub_bits = 6;
  static constexpr unsigned sub = 1u << sub_bits;  // 64
  static constexpr unsigned linear = 2 * sub;      // values below 128 are exact
  static constexpr unsigned groups = 34;
  static size_t bucket_of(uint64_t v);
  static uint64_t bucket_upper(size_t b);

private:
  std::array<uint64_t, linear + groups * sub> buckets_{};
  uint64_t count_ = 0, sum_ = 0, max_ = 0, min_ = UINT64_MAX;
};

/// Responses by code byte.
struct code_counts {
  std::array<uint64_t, 256> by_code{};
  void add(uint8_t code) { ++by_code[code]; }
  uint64_t total() const;
  uint64_t of(uint8_t code) const { return by_code[code]; }
  /// "2.04:1234 4.04:2" (codes with a count, ascending); "-" when none.
  std::string text() const;
  /// {"2.04":1234,"4.04":2}
  std::string json() const;
};

}  // namespace coapfleet::sim
