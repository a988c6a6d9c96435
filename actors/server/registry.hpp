// The node registry owns the node directory (node_id → node actor) and a
// summary of every node's liveness and health for fleet-wide views. It
// monitors the node actors and restarts a dead one from the store.
#pragma once

#include <chrono>
#include <vector>

#include "actors/interfaces.hpp"
#include "actors/server/node.hpp"

namespace coapfleet::server {

struct registry_config {
  liveness_config liveness;  ///< its clock also times the restart window
  /// A node actor that dies is restarted at most this often within
  /// `restart_window`; after that it stays down (its requests answer 5.00).
  uint32_t max_restarts = 3;
  std::chrono::milliseconds restart_window{std::chrono::minutes(1)};
  /// Registrations of new node ids beyond this many nodes get 4.29; 0: no cap.
  size_t max_nodes = 1'000'000;
};

/// Spawns the registry with the nodes loaded from the store; it spawns a node
/// actor for each and announces every route to the transport.
registry_actor spawn_registry(caf::actor_system& sys, registry_config cfg,
                              std::vector<model::node_record> nodes,
                              persistence_actor persistence, transport_actor transport);

}  // namespace coapfleet::server
