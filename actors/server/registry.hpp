// The node registry owns the node directory (node_id → node actor) and a
// summary of every node's liveness and health for fleet-wide views.
#pragma once

#include <vector>

#include "actors/interfaces.hpp"
#include "actors/server/node.hpp"

namespace coapfleet::server {

struct registry_config {
  liveness_config liveness;
};

/// Spawns the registry with the nodes loaded from the store; it spawns a node
/// actor for each and announces every route to the transport.
registry_actor spawn_registry(caf::actor_system& sys, registry_config cfg,
                              std::vector<model::node_record> nodes,
                              persistence_actor persistence, transport_actor transport);

}  // namespace coapfleet::server
