// This process's resident memory and CPU share, from /proc/self: what
// GET /health reports about the server itself.
#pragma once

#include <cstdint>

namespace coapfleet::common {

/// Samples CPU time between two calls: the first call reports no CPU share.
class process_sampler {
public:
  struct sample {
    uint64_t rss_bytes = 0;
    double cpu_percent = -1;  ///< of one core since the previous sample; < 0: unknown
  };
  /// `now_ms`: a monotonic or wall clock in milliseconds.
  sample take(int64_t now_ms);

private:
  double last_cpu_seconds_ = 0;
  int64_t last_at_ms_ = 0;
};

}  // namespace coapfleet::common
