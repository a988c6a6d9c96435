// A token bucket (rate per second, burst) on the steady clock in
// milliseconds: the budget behind 4.29 Too Many Requests (RFC 8516).
#pragma once

#include <algorithm>
#include <cstdint>

namespace coapfleet::common {

struct token_bucket {
  double tokens = -1;  ///< < 0: not used yet (starts full)
  int64_t at_ms = 0;   ///< when `tokens` was last brought up to date

  /// Takes one token if there is one. `rate` tokens come back per second,
  /// never more than `burst` are kept.
  bool take(int64_t now_ms, double rate, double burst) {
    refill(now_ms, rate, burst);
    if (tokens < 1)
      return false;
    tokens -= 1;
    return true;
  }

  /// Whole seconds until the next token (at least 1): the Max-Age of a 4.29.
  uint32_t retry_after_s(double rate) const {
    if (rate <= 0)
      return 60;
    double s = (1 - std::max(tokens, 0.0)) / rate;
    return static_cast<uint32_t>(std::clamp(s + 0.999, 1.0, 3600.0));
  }

  /// True when the bucket is full again (nothing worth keeping).
  bool full(int64_t now_ms, double rate, double burst) {
    refill(now_ms, rate, burst);
    return tokens >= burst;
  }

private:
  void refill(int64_t now_ms, double rate, double burst) {
    if (tokens < 0) {
      tokens = burst;
      at_ms = now_ms;
      return;
    }
    if (now_ms > at_ms) {
      tokens = std::min(burst, tokens + static_cast<double>(now_ms - at_ms) * rate / 1000.0);
      at_ms = now_ms;
    }
  }
};

}  // namespace coapfleet::common
