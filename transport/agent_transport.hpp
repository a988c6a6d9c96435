// The worker agent's CoAP transport: serves GET /health, GET /system and
// POST /updates/available, and sends the agent's own requests (registration,
// health, reports, artifact blocks) to the main server. One thread; see
// runtime.hpp.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actors/interfaces.hpp"
#include "common/certificate_files.hpp"
#include "common/key_file.hpp"
#include "transport/stop_reason.hpp"

namespace coapfleet::transport {

struct agent_transport_config {
  std::string bind = "0.0.0.0";
  uint16_t port = 5683;
  size_t max_payload = 64 * 1024;
  /// With a key (coaps:// to the server): requests to the server go over
  /// DTLS as this node, and the agent's own endpoint is DTLS only, open to
  /// nobody but a peer holding the node's key (its server).
  common::psk_credentials credentials;
  /// With a certificate instead (coaps:// with --cert/--key/--ca): requests
  /// to the server go over DTLS showing it, the server's certificate must
  /// chain to the CA and name `server_name`, and the agent's own endpoint is
  /// DTLS only, open to nobody but a peer with such a certificate (its server).
  common::certificate_files certificate;
  std::string server_name;
  std::string server_host;
  uint16_t server_port = 0;
  /// The other members of the server's cluster (--server again, coaps://
  /// as the first): requests to them go over DTLS the same way (the node's
  /// key, or its certificate with each member's naming `server_name`).
  std::vector<std::pair<std::string, uint16_t>> other_servers;
  /// How long a request to the server waits for its answer (see
  /// runtime::set_request_timeout).
  std::chrono::milliseconds request_timeout{100'000};
};

class agent_transport {
public:
  agent_transport(caf::actor_system& sys, agent_transport_config cfg);
  ~agent_transport();
  bool open(std::string& error);
  agent_transport_actor handle() const;
  void set_gateway(agent_gateway_actor gateway);
  stop_reason run();
  std::string endpoint_description() const;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

}  // namespace coapfleet::transport
