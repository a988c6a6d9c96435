// Internal state of the server transport, shared by its setup
// (server_transport.cpp) and its resource handlers (server_resources.cpp).
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

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

  // -- observable representations ------------------------------------------------
  /// One observable path: its resource and the latest representation, kept
  /// so that every observer's notification is served from one encoding.
  struct observable {
    coap_resource_t* resource = nullptr;
    coap_reply cached;
    bool has_cache = false;  ///< a representation exists (maybe stale)
    bool valid = false;      ///< and nothing changed since
    bool observed = false;   ///< someone registered as an observer
    bool refreshing = false; ///< a refresh is on its way
    bool again = false;      ///< changed during the refresh
    int64_t last_refresh = 0;
    int64_t due = -1;        ///< a refresh is scheduled for then
    uint64_t generation = 0; ///< counts changes
  };
  std::unordered_map<std::string, observable> observables;  ///< by path
  std::vector<std::string> to_create;   ///< nested resources to add (deferred)
  std::vector<std::string> to_delete;   ///< nested resources to remove (deferred)
  std::vector<std::string> to_notify;   ///< resources whose observers get the cache
  std::vector<std::string> artifacts_to_add;
  std::vector<std::string> due_paths;   ///< observables with a refresh scheduled
  int64_t last_trim = 0;

  // -- load shedding of PUT /health ------------------------------------------------
  shedder shed;
  coap_reply shed_reply;          ///< the 5.03 with Max-Age, encoded once
  uint64_t health_forwarded = 0;  ///< reports handed to node actors
  uint64_t health_absorbed = 0;   ///< of those, taken by the persistence actor
  uint32_t health_seen = 0;
  int64_t busy_read_at = 0;       ///< when the shedder last read the socket gauges
  receive_queue queue;            ///< that reading
  int64_t shed_logged_at = 0;
  uint64_t shed_logged_refused = 0;
  uint64_t shed_logged_admitted = 0;
  uint64_t backlog() const {
    return health_forwarded > health_absorbed ? health_forwarded - health_absorbed : 0;
  }
  /// True when this PUT /health is to be refused (counts it, logs now and then).
  bool shed_health();

  /// A representation changed (from an actor, or a health report seen here).
  void changed(const std::string& path);
  void schedule_refresh(const std::string& path, observable& o);
  void refresh(const std::string& path, observable& o);
  /// The deferred libcoap work; see runtime::housekeeping.
  int64_t do_housekeeping(bool& worked);
  coap_resource_t* add_nested_resource(const std::string& path, const char* rt);

  void send_notification(job_actor job, const std::string& ip, uint16_t port,
                         const model::update_notification& note);
  bool register_resources();
};

inline server_transport::impl* server_of(coap_session_t* session) {
  return static_cast<server_transport::impl*>(runtime_of(session));
}

}  // namespace coapfleet::transport
