// The node registry owns the node directory (node_id → a compact entry and,
// while the node is active, its actor) and a summary of every node's
// liveness and health for fleet-wide views. It starts node actors when their
// nodes talk, closes them when they go quiet, and restarts one that dies.
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
  /// /nodes/changes lists at most this many changed nodes per copy; when more
  /// changed, the copy says "reset" (read the listing again) instead.
  size_t max_changes = 10'000;
  /// GET /health lists at most this many unhealthy nodes (the first by id;
  /// `unhealthy_more` counts the rest, GET /nodes?health=unhealthy lists
  /// them all): its rendering, which every registration's 2.01 waits for,
  /// must not grow with the fleet. 0: every one.
  size_t health_list_max = 100;
  /// A member of a cluster: nodes register through every member, so the
  /// nodes a job targets are read from the shared store first (their
  /// addresses, traits and last contact as the other members wrote them).
  bool clustered = false;
  /// Cluster: how often the nodes other members serve are read from the store
  /// (GET /health on any member counts every node, at most this late).
  std::chrono::milliseconds refresh_every{std::chrono::seconds(5)};
};

/// Spawns the registry with the nodes' briefs loaded from the store (no node
/// actor is started until its node talks or is read).
registry_actor spawn_registry(caf::actor_system& sys, registry_config cfg,
                              std::vector<model::node_brief> nodes,
                              persistence_actor persistence, transport_actor transport);

}  // namespace coapfleet::server
