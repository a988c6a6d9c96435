#include "actors/server/node.hpp"

#include <memory>
#include <optional>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "model/json.hpp"
#include "model/rules.hpp"

namespace coapfleet::server {

namespace {

// A node actor lives while its node talks (the registry starts it for a
// report, a re-registration or a read, and closes it when the node has been
// quiet for `idle_after`). It starts from the registry's summary of the
// node; the full record is read from the store only when someone asks for
// it, and what the actor heard meanwhile is laid over what was read.
struct node_state {
  static inline const char* name = "node";
  node_summary summary;  ///< what the registry counts (kept current here)
  /// The full record, once read from the store (then kept current).
  std::optional<model::node_record> record;
  bool loading = false;
  bool close_after_load = false;  ///< closed while reading: ends once it answered
  std::vector<caf::typed_response_promise<model::node_record>> waiting;
  /// Heard while the record was being read: laid over it once it is there.
  std::optional<model::node_registration> new_reg;
  std::optional<model::health_report> new_health;
  model::millis new_health_at = 0;
  liveness_config cfg;
  registry_actor registry;
  persistence_actor persistence;
};

using self_ptr = node_actor::stateful_pointer<node_state>;

model::node_record current(node_state& st) {
  auto out = *st.record;
  out.last_seen = std::max(out.last_seen, st.summary.last_seen);
  out.status = model::liveness(out.last_seen, st.cfg.now(), st.cfg.stale_after.count(),
                               st.cfg.offline_after.count());
  return out;
}

void take_health(node_state& st, model::health_report& report, model::millis at) {
  if (at >= st.summary.health_at) {
    st.summary.has_health = true;
    st.summary.healthy = report.overall_healthy;
    st.summary.error_messages = report.overall_healthy ? std::vector<std::string>{}
                                                       : report.error_messages;
    st.summary.health_at = at;
  }
  st.summary.last_seen = std::max(st.summary.last_seen, at);
  if (st.record) {
    if (at >= st.record->health_at) {
      st.record->health = report;
      st.record->has_health = true;
      st.record->health_at = at;
    }
    st.record->last_seen = std::max(st.record->last_seen, at);
  } else if (st.loading && at >= st.new_health_at) {
    st.new_health = report;
    st.new_health_at = at;
  }
}

/// Reads the record from the store (the persistence actor commits what is
/// pending first and lays any health it has not written over it).
void load(self_ptr self) {
  auto& st = self->state;
  if (st.loading)
    return;
  st.loading = true;
  self->request(st.persistence, caf::infinite, atom::load::value, atom::node::value,
                st.summary.node_id)
    .then(
      [self](model::node_record& rec) {
        auto& st = self->state;
        st.loading = false;
        if (st.new_reg)
          rec.reg = std::move(*st.new_reg);
        if (st.new_health && st.new_health_at >= rec.health_at) {
          rec.health = std::move(*st.new_health);
          rec.has_health = true;
          rec.health_at = st.new_health_at;
        }
        st.new_reg.reset();
        st.new_health.reset();
        st.record = std::move(rec);
        auto waiting = std::move(st.waiting);
        st.waiting.clear();
        for (auto& rp : waiting)
          rp.deliver(current(st));
        if (st.close_after_load)
          self->quit();
      },
      [self](caf::error& err) {
        auto& st = self->state;
        st.loading = false;
        CF_WARN("node", "cannot read node ", st.summary.node_id, ": ", caf::to_string(err));
        auto waiting = std::move(st.waiting);
        st.waiting.clear();
        for (auto& rp : waiting)
          rp.deliver(err);
        if (st.close_after_load)
          self->quit();
      });
}

}  // namespace

node_summary summarize(const model::node_brief& b) {
  node_summary s;
  s.node_id = b.node_id;
  s.has_health = b.has_health;
  s.healthy = !b.has_health || b.healthy;
  if (s.has_health && !s.healthy)
    s.error_messages = b.error_messages;
  s.last_seen = b.last_seen;
  return s;
}

node_actor spawn_node(caf::actor_system& sys, node_summary summary, liveness_config cfg,
                      registry_actor registry, persistence_actor persistence) {
  auto fn = [](self_ptr self, node_summary summary, liveness_config cfg,
               registry_actor registry,
               persistence_actor persistence) -> node_actor::behavior_type {
    auto& st = self->state;
    st.summary = std::move(summary);
    st.cfg = std::move(cfg);
    st.registry = std::move(registry);
    st.persistence = std::move(persistence);
    return {
      [self](atom::health, model::health_report& report, model::millis at) {
        auto& st = self->state;
        take_health(st, report, at);
        self->send(st.persistence, atom::health::value,
                   model::put_health{std::move(report), at});
        self->send(st.registry, atom::summary::value, st.summary);
      },
      [self](atom::enroll, model::node_registration& reg, model::millis at) {
        auto& st = self->state;
        st.summary.last_seen = std::max(st.summary.last_seen, at);
        if (st.record) {
          st.record->reg = std::move(reg);
          st.record->last_seen = std::max(st.record->last_seen, at);
        } else if (st.loading) {
          st.new_reg = std::move(reg);
        }  // else: the store has it (the registry committed it first)
        return st.summary;
      },
      [self](atom::get) -> caf::result<model::node_record> {
        auto& st = self->state;
        if (st.record)
          return current(st);
        auto rp = self->make_response_promise<model::node_record>();
        st.waiting.push_back(rp);
        load(self);
        return rp;
      },
      // The node went quiet: the registry closes its actor once the
      // transport routes nothing more to it (everything routed before is
      // ahead of this message in the mailbox).
      [self](atom::close) {
        if (self->state.loading)
          self->state.close_after_load = true;
        else
          self->quit();
      },
    };
  };
  return sys.spawn(fn, std::move(summary), std::move(cfg), std::move(registry),
                   std::move(persistence));
}

}  // namespace coapfleet::server
