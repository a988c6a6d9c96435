// The server's gateway: the request logic of the main server. It turns a
// typed request of the transport into a request to the owning actor, and the
// typed answer (or error) into a coap_reply (code + JSON body), so encoding
// never runs on the libcoap thread.
#pragma once

#include <chrono>

#include "actors/cluster_interface.hpp"
#include "actors/interfaces.hpp"
#include "actors/replies.hpp"

namespace coapfleet::server {

struct gateway_config {
  /// A request that gets no answer within this time is answered 5.03.
  std::chrono::seconds request_timeout{std::chrono::seconds(30)};
  /// How often the database is pinged (GET /health says whether it answers).
  std::chrono::milliseconds database_ping_interval{std::chrono::seconds(5)};
  /// Jobs one identity (or one plain source) may create per minute, as a
  /// token bucket (a burst of this many); beyond: 4.29. 0: no limit.
  double jobs_per_minute = 60;
  /// GET /audit pages the gateway answers (older than the transport holds)
  /// are cut to this many bytes: a separate response must fit one datagram.
  size_t audit_page_bytes = 1024;
};

struct gateway_peers {
  transport_actor transport;
  registry_actor registry;
  job_supervisor_actor jobs;
  system_actor system;
  persistence_actor persistence;
  artifact_store_actor artifacts;
  keys_actor keys;  ///< GET/POST /keys (5.03 without one)
  cluster_actor cluster;  ///< GET /cluster (5.03 without one)
};

gateway_actor spawn_gateway(caf::actor_system& sys, gateway_config cfg, gateway_peers peers);

}  // namespace coapfleet::server
