// The agent's gateway: the request logic of the worker agent. It turns the
// typed requests of the agent's transport (GET /system, POST
// /updates/available) into requests to the metrics, reporter and installer
// actors, and their answers into coap_reply values.
#pragma once

#include <string>

#include "actors/interfaces.hpp"
#include "actors/replies.hpp"

namespace coapfleet::agent {

struct agent_gateway_peers {
  agent_transport_actor transport;
  metrics_actor metrics;
  reporter_actor reporter;
  installer_actor installer;
  std::string server;  ///< "coap://host:port", for GET /system
};

agent_gateway_actor spawn_agent_gateway(caf::actor_system& sys, agent_gateway_peers peers);

}  // namespace coapfleet::agent
