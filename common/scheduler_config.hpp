// How the server and the agent run CAF's scheduler on small machines.
#pragma once

#include <chrono>
#include <cstddef>

#include <caf/actor_system_config.hpp>
#include <caf/timespan.hpp>

namespace coapfleet {

/// `workers` threads for the (non-detached) actors. An idle worker spins a
/// little and then sleeps on its condition variable. CAF's default
/// "moderate" phase in between (500 naps of 50 us) costs more CPU than the
/// work itself at a few thousand messages a second: with it, the server took
/// ~27% of a core to serve 10,000 nodes reporting every 10 s; without it,
/// ~10%. Messages from outside CAF (the transport, timers) wake a sleeping
/// worker at once; a message one actor sends another lands in the sending
/// worker's own queue, and a sleeping worker steals from there after its
/// relaxed timeout (CAF's default, 10 ms). A single worker has nobody to
/// steal from: it sleeps until woken (the agent: ~0.3% of a core at rest
/// with 100 wake-ups a second, ~0.07% without).
inline void configure_scheduler(caf::actor_system_config& cfg, size_t workers) {
  cfg.set("scheduler.max-threads", workers);
  cfg.set("work-stealing.moderate-poll-attempts", size_t{0});
  if (workers == 1)
    cfg.set("work-stealing.relaxed-sleep-duration", caf::timespan{std::chrono::seconds(1)});
}

}  // namespace coapfleet
