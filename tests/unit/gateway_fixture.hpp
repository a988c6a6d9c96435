// The server's gateway on the test coordinator, with mock owners (registry,
// job supervisor, system actor, persistence, artifact store, keys actor) and
// a mock transport that records every (reply, id, ...) it gets; shared by
// gateway_test.cpp and gateway_keys_test.cpp.
#pragma once

#include "server_mocks.hpp"

#include "actors/replies.hpp"
#include "actors/server/gateway.hpp"
#include "model/json.hpp"
#include "model/json_value.hpp"

namespace coapfleet::actor_test {

inline constexpr auto request_timeout = std::chrono::seconds(10);
inline constexpr auto ping_interval = std::chrono::seconds(5);

struct gateway_fixture : coordinated_system {
  std::shared_ptr<gateway_wire> wire = std::make_shared<gateway_wire>();
  std::shared_ptr<registry_script> registry_does = std::make_shared<registry_script>();
  std::shared_ptr<jobs_script> jobs_do = std::make_shared<jobs_script>();
  std::shared_ptr<system_script> system_does = std::make_shared<system_script>();
  std::shared_ptr<persistence_script> database = std::make_shared<persistence_script>();
  std::shared_ptr<artifacts_script> store_does = std::make_shared<artifacts_script>();
  std::shared_ptr<keys_script> keys_do = std::make_shared<keys_script>();
  server::gateway_peers peers;
  gateway_actor gateway;
  peer from{"127.0.0.9", 41000, "operator-1", model::role::operator_, true};

  gateway_fixture() {
    peers.transport = own(sys->spawn(mock_gateway_transport, wire));
    peers.registry = own(sys->spawn(mock_registry, registry_does));
    peers.jobs = own(sys->spawn(mock_jobs, jobs_do));
    peers.system = own(sys->spawn(mock_system, system_does));
    peers.persistence = own(sys->spawn(mock_persistence, database));
    peers.artifacts = own(sys->spawn(mock_artifacts, store_does));
    peers.keys = own(sys->spawn(mock_keys, keys_do));
    server::gateway_config cfg;
    cfg.request_timeout = request_timeout;
    cfg.database_ping_interval = ping_interval;
    gateway = own(server::spawn_gateway(*sys, cfg, peers));
    sched->run();
  }

  /// Sends `xs` to the gateway and runs the system.
  template <class... Ts>
  void send(Ts&&... xs) {
    caf::anon_send(gateway, std::forward<Ts>(xs)...);
    sched->run();
  }

  /// The one answer to request `id`, which must be a coap_reply.
  coap_reply reply_to(uint64_t id) {
    REQUIRE_MESSAGE(wire->answers_to(id) == 1, "request " << id << " got "
                                                 << wire->answers_to(id) << " answers");
    for (auto& [rid, r] : wire->replies)
      if (rid == id)
        return r;
    FAIL("the answer to request " << id << " is not a coap_reply");
    return {};
  }

  template <class T>
  static T only(const std::vector<std::pair<uint64_t, T>>& all, uint64_t id, const char* what) {
    for (auto& [rid, x] : all)
      if (rid == id)
        return x;
    FAIL("the answer to request " << id << " is not a " << what);
    return {};
  }

  model::fleet_health health_reply_to(uint64_t id) {
    REQUIRE(wire->answers_to(id) == 1);
    return only(wire->health, id, "fleet_health");
  }

  /// GET /health's server.database as the gateway renders it now.
  std::string database_shown(uint64_t id) {
    send(atom::observe::value, id, resource{resource_kind::health, {}});
    return health_reply_to(id).server.database;
  }

  size_t health_changes() const {
    size_t n = 0;
    for (auto& [r, u] : wire->changed)
      n += r.kind == resource_kind::health && r.id.empty() && u == urgency::telemetry;
    return n;
  }

  /// The pings the gateway sends over `n` intervals.
  void ping_intervals(int n) {
    for (int i = 0; i < n; ++i)
      advance(ping_interval);
  }
};

inline model::json_document json_of(const coap_reply& r) {
  auto doc = model::json_document::parse(r.payload);
  REQUIRE_MESSAGE(doc.ok(), "not JSON: " << r.payload);
  return doc;
}

/// A JSON answer with `code` (a CoAP code as class*100+detail), no Max-Age
/// and nothing for the transport to do afterwards.
inline void check_json(const coap_reply& r, uint16_t code) {
  CHECK(r.code == code);
  CHECK(r.content_format == 50);
  CHECK(r.max_age == UINT32_MAX);
  CHECK(r.after == after_reply::nothing);
}

}  // namespace coapfleet::actor_test
