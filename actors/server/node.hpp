// A node actor owns one registered node while the node is active: its
// registration and latest health. The registry starts it when the node
// talks or is read and closes it when the node goes quiet (virtual actors);
// liveness (online → stale → offline) is the registry's.
#pragma once

#include <chrono>
#include <functional>

#include "common/clock.hpp"
#include "actors/interfaces.hpp"

namespace coapfleet::server {

struct liveness_config {
  /// Where "now" comes from (each test gives it a clock of its own).
  std::function<model::millis()> now = now_millis;
  std::chrono::milliseconds stale_after{std::chrono::seconds(60)};
  std::chrono::milliseconds offline_after{std::chrono::seconds(180)};
  /// A node actor is closed once its node has been quiet this long (its
  /// state is in the store; the next report starts a new one).
  std::chrono::milliseconds idle_after{std::chrono::seconds(40)};
};

/// What the registry keeps of a node (see node_summary), from its brief:
/// the node actor starts from it and sends it on every change.
node_summary summarize(const model::node_brief& brief);

/// A node's actor, started from its summary: it reads the rest of the
/// record from the store when it is first asked for it.
node_actor spawn_node(caf::actor_system& sys, node_summary summary, liveness_config cfg,
                      registry_actor registry, persistence_actor persistence);

}  // namespace coapfleet::server
