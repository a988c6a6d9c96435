// The agent's gateway: the request logic of the worker agent. It turns the
// typed requests of the agent's transport (GET /system, POST
// /updates/available) into requests to the metrics, reporter and installer
// actors, and their answers into coap_reply values. It obeys commands from
// the agent's own server only (from_my_server).
#pragma once

#include <vector>

#include <string>

#include "actors/interfaces.hpp"
#include "actors/replies.hpp"

namespace coapfleet::agent {

/// The one peer whose commands (POST /updates/available) this agent obeys:
/// its server, as --server (and --key-file) name it.
struct trusted_server {
  std::string address;  ///< IP literal ("127.0.0.1", "::1")
  uint16_t port = 5683;
  /// With DTLS: the PSK identity a session must have been opened with (the
  /// node's own id: only the holder of its key, the server, has one). Empty
  /// in plain mode: then no DTLS session is the server.
  std::string identity;
};

/// Whether a request comes from this agent's server. With DTLS: a session
/// opened with the server's identity (the handshake proved the key), and
/// never a plain request. Plain CoAP: from the server's address (compared
/// as IP addresses, an IPv4-mapped IPv6 address as its IPv4 form) and port,
/// which is all plain CoAP has to go by (a source address can be forged:
/// plain mode is for trusted networks).
bool from_my_server(const peer& from, const trusted_server& server);

struct agent_gateway_peers {
  agent_transport_actor transport;
  metrics_actor metrics;
  reporter_actor reporter;
  installer_actor installer;
  std::string server;  ///< "coap://host:port", for GET /system
  trusted_server commands_from;  ///< whose notifications are obeyed
  /// The other members of the server's cluster (--server given again):
  /// their notifications are obeyed too.
  std::vector<trusted_server> also_from;
};

agent_gateway_actor spawn_agent_gateway(caf::actor_system& sys, agent_gateway_peers peers);

}  // namespace coapfleet::agent
