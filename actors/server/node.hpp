// A node actor owns one registered node: its registration, latest health,
// and liveness (online → stale → offline when reports stop).
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
};

/// What the registry keeps of a node (see node_summary): the node actor
/// sends it on every change, the registry makes the first one itself.
node_summary summarize(const model::node_record& record);

node_actor spawn_node(caf::actor_system& sys, model::node_record record,
                      liveness_config cfg, registry_actor registry,
                      persistence_actor persistence);

}  // namespace coapfleet::server
