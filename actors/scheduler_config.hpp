// How the server and the agent run CAF's scheduler on small machines.
#pragma once

#include <chrono>
#include <cstddef>

#include <caf/actor_system_config.hpp>
#include <caf/timespan.hpp>

namespace coapfleet {

/// `workers` threads for the (non-detached) actors. An idle worker spins a
/// little and then sleeps on its condition variable, where a new message
/// wakes it. CAF's default "moderate" phase in between (500 naps of 50 us)
/// costs more CPU than the work itself at a few thousand messages a second:
/// with it, the server took ~27% of a core to serve 10,000 nodes reporting
/// every 10 s; without it, ~10%. The relaxed timeout only bounds how long a
/// job may wait to be stolen by another worker; wake-ups come by notify.
inline void configure_scheduler(caf::actor_system_config& cfg, size_t workers) {
  cfg.set("scheduler.max-threads", workers);
  cfg.set("work-stealing.moderate-poll-attempts", size_t{0});
  cfg.set("work-stealing.relaxed-sleep-duration",
          caf::timespan{std::chrono::milliseconds(100)});
}

}  // namespace coapfleet
