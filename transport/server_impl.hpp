// Internal state of the server transport, shared by its setup
// (server_transport.cpp) and its resource handlers (server_resources.cpp).
#pragma once

#include <string>
#include <unordered_map>

#include "transport/runtime.hpp"
#include "transport/server_transport.hpp"

namespace coapfleet::transport {

struct server_transport::impl : runtime {
  impl(caf::actor_system& sys, server_transport_config cfg);

  server_transport_config cfg;
  gateway_actor gateway;
  std::unordered_map<std::string, node_actor> routes;  ///< node_id → node actor
  /// Artifact contents being served (name → body and ETag), filled on demand.
  struct served_artifact {
    std::shared_ptr<const shared_bytes> body;
    uint64_t etag = 0;
  };
  std::unordered_map<std::string, served_artifact> artifacts;
  std::unordered_map<std::string, coap_resource_t*> artifact_resources;
  /// Serves /artifacts/<name> from now on (idempotent; drops a cached older version).
  bool add_artifact_resource(const std::string& name);

  void send_notification(job_actor job, const std::string& ip, uint16_t port,
                         const model::update_notification& note);
  bool register_resources();
};

inline server_transport::impl* server_of(coap_session_t* session) {
  return static_cast<server_transport::impl*>(runtime_of(session));
}

}  // namespace coapfleet::transport
