#include "actors/server/node.hpp"

#include <memory>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "model/json.hpp"
#include "model/rules.hpp"

namespace coapfleet::server {

namespace {

struct node_state {
  static inline const char* name = "node";
  model::node_record record;
  liveness_config cfg;
  registry_actor registry;
  persistence_actor persistence;
};

using self_ptr = node_actor::stateful_pointer<node_state>;

model::node_status compute_status(const node_state& st, model::millis now) {
  return model::liveness(st.record.last_seen, now, st.cfg.stale_after.count(),
                         st.cfg.offline_after.count());
}

/// Tells the registry that the node changed.
void publish_summary(self_ptr self) {
  auto& st = self->state;
  self->send(st.registry, atom::summary::value, summarize(st.record));
}

/// Liveness is the registry's (one deadline structure for the fleet, not a
/// timer per node); the node keeps when it was last heard from.
void heard_from(self_ptr self, model::millis now) {
  auto& st = self->state;
  st.record.last_seen = std::max(st.record.last_seen, now);
}

}  // namespace

node_summary summarize(const model::node_record& record) {
  node_summary s;
  s.node_id = record.reg.node_id;
  s.status = record.status;
  s.has_health = record.has_health;
  s.healthy = !record.has_health || record.health.overall_healthy;
  if (s.has_health && !s.healthy)
    s.error_messages = record.health.error_messages;
  s.last_seen = record.last_seen;
  return s;
}

node_actor spawn_node(caf::actor_system& sys, model::node_record record, liveness_config cfg,
                      registry_actor registry, persistence_actor persistence) {
  // CAF keeps the spawn arguments for the actor's lifetime: the record goes
  // in through a holder and is moved out of it, so it is not kept twice.
  auto fn = [](self_ptr self, std::shared_ptr<model::node_record> record, liveness_config cfg,
               registry_actor registry,
               persistence_actor persistence) -> node_actor::behavior_type {
    auto& st = self->state;
    st.record = std::move(*record);
    record.reset();
    st.cfg = cfg;
    st.registry = std::move(registry);
    st.persistence = std::move(persistence);
    auto now = st.cfg.now();
    st.record.status = compute_status(st, now);
    return {
      [self](atom::health, model::health_report& report, model::millis at) {
        auto& st = self->state;
        st.record.health = report;
        st.record.has_health = true;
        st.record.health_at = at;
        self->send(st.persistence, atom::health::value,
                   model::put_health{std::move(report), at});
        heard_from(self, at);
        publish_summary(self);
      },
      [self](atom::enroll, model::node_registration& reg, model::millis at) {
        self->state.record.reg = std::move(reg);
        heard_from(self, at);
        return summarize(self->state.record);
      },
      [self](atom::get) -> model::node_record {
        auto& st = self->state;
        auto out = st.record;
        out.status = compute_status(st, st.cfg.now());
        return out;
      },
    };
  };
  return sys.spawn(fn, std::make_shared<model::node_record>(std::move(record)), std::move(cfg),
                   std::move(registry), std::move(persistence));
}

}  // namespace coapfleet::server
