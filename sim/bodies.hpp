// The JSON bodies a simulated node sends: its registration, health reports
// with plausible, varying readings (bounded random walks), and update step
// reports. Health bodies are formatted by hand into a caller's buffer (this is
// the load generator's hot path); the others go through model/'s encoders.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "model/types.hpp"

namespace coapfleet::sim {

/// A small, fast, seedable PRNG (xoshiro256**) with helpers.
class rng {
public:
  explicit rng(uint64_t seed = 1);
  uint64_t next();
  /// Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  bool chance(double p) { return p > 0 && uniform() < p; }

private:
  uint64_t s_[4];
};

/// One node's simulated readings; each step moves them a little.
struct health_walk {
  double cpu = 15, memory = 40, disk = 30, temperature = 45;
  double uptime = 0;
  bool unhealthy = false;  ///< this report says docker is down

  void init(rng& r);
  /// Advances by `dt` seconds of simulated time; unhealthy with probability p.
  void step(rng& r, double dt, double unhealthy_rate);
};

/// Writes a PUT /health body into buf (NUL-terminated); returns its length,
/// or 0 when it does not fit. `timestamp` is "YYYY-MM-DDTHH:MM:SSZ" or empty.
size_t format_health(char* buf, size_t capacity, const std::string& node_id,
                     const health_walk& h, const std::vector<std::string>& services,
                     const char* timestamp);

/// ISO 8601 UTC seconds for a Unix time.
std::string iso_time(int64_t unix_seconds);

/// The POST /nodes body of a simulated node.
std::string registration_body(const std::string& node_id, const std::string& ip, uint16_t port,
                              const std::vector<std::string>& services, uint32_t index,
                              const model::string_map& labels = {},
                              const model::string_map* inventory = nullptr);

/// A POST /updates {"action":"report"} body.
std::string report_body(const std::string& job_id, const std::string& node_id,
                        model::node_update_state state, int progress, int result,
                        const std::string& error_message,
                        const model::string_map* inventory = nullptr, uint32_t attempt = 0);

}  // namespace coapfleet::sim
