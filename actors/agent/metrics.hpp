// The metrics actor owns the node's sampler: it samples every interval and
// hands each sample to the reporter (to send) and the transport (to serve
// GET /health).
#pragma once

#include <chrono>

#include "actors/agent/sampler.hpp"
#include "actors/interfaces.hpp"

namespace coapfleet::agent {

struct metrics_config {
  std::string node_id;
  std::chrono::milliseconds interval{std::chrono::seconds(10)};
  sampler_config sampling;
};

metrics_actor spawn_metrics(caf::actor_system& sys, metrics_config cfg, reporter_actor reporter,
                            agent_transport_actor transport);

}  // namespace coapfleet::agent
