// The reporter owns the agent's conversation with the main server: it
// registers (again whenever the server answers 4.04), sends every health
// sample, and delivers job step reports in order from an outbox kept on
// disk, backing off with jitter while the server cannot be reached (or
// failing over to the next of several servers).
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "actors/interfaces.hpp"

namespace coapfleet::agent {

struct reporter_config {
  std::string server_host = "127.0.0.1";
  uint16_t server_port = 5683;
  /// The other members of the server's cluster (--server given again), in
  /// turn: when the current one stops answering, the reporter fails over to
  /// the next and registers there before anything else.
  std::vector<std::pair<std::string, uint16_t>> other_servers;
  model::node_registration registration;  ///< what POST /nodes sends
  std::string outbox_path;                 ///< state_dir/outbox.json
  std::chrono::milliseconds backoff_min{std::chrono::seconds(1)};
  std::chrono::milliseconds backoff_max{std::chrono::seconds(60)};
};

reporter_actor spawn_reporter(caf::actor_system& sys, reporter_config cfg,
                              agent_transport_actor transport);

}  // namespace coapfleet::agent
