// The registry of a cluster member. Agents talk to any member (the one
// they were given first, then the next when it stops answering), so each
// member serves the nodes that talk to it: their actors, reports and
// observers are there. What the other members' nodes did reaches this
// member through the shared store: every refresh_every, and before job
// targets are resolved, the registry reads every node's brief and takes,
// for each node it does not serve, its registration (address, traits),
// its last contact and its latest health. GET /health and the job targets
// then cover the whole fleet on every member, at most refresh_every late
// for nodes served elsewhere.
#include <unordered_set>

#include "actors/server/registry_internal.hpp"
#include "common/log.hpp"
#include "model/rules.hpp"

namespace coapfleet::server::registry_detail {

namespace {

/// Merges the briefs read from the store (asked at `asked_at`).
void merge(self_ptr self, std::vector<model::node_brief>& briefs, model::millis asked_at) {
  auto& st = self->state;
  std::unordered_set<std::string> stored;
  stored.reserve(briefs.size());
  size_t added = 0;
  bool health_changed = false;
  for (auto& b : briefs) {
    stored.insert(b.node_id);
    auto i = st.nodes.find(b.node_id);
    if (i == st.nodes.end()) {
      add_node(self, b);
      note_change(st, b.node_id);
      ++added;
      continue;
    }
    auto& e = i->second;
    if (e.actor)
      continue;  // served here: its actor is ahead of the store
    e.ip_address = b.ip_address;
    e.port = b.port;
    if (!(traits_of(e) == b.traits))
      set_traits(st, e, b.traits);
    auto s = summarize(b);
    if (s.health_at < e.summary.health_at) {
      s.has_health = e.summary.has_health;
      s.healthy = e.summary.healthy;
      s.error_messages = e.summary.error_messages;
      s.health_at = e.summary.health_at;
    }
    s.last_seen = std::max(s.last_seen, e.summary.last_seen);
    if (s.last_seen == e.summary.last_seen && s.health_at == e.summary.health_at)
      continue;
    s.status = model::liveness(s.last_seen, st.cfg.liveness.now(),
                               st.cfg.liveness.stale_after.count(),
                               st.cfg.liveness.offline_after.count());
    health_changed = set_summary(st, e, std::move(s)) || health_changed;
    schedule(self, i->first, e);
  }
  // Deleted through another member (a node registered here since the read
  // began is not in it: it stays).
  std::vector<std::string> gone;
  for (auto& [id, e] : st.nodes)
    if (!e.actor && !stored.count(id) && e.registered_at < asked_at)
      gone.push_back(id);
  for (auto& id : gone)
    forget_node(self, id);
  if (added > 0)
    CF_DEBUG("registry", added, " nodes registered through other members (", st.nodes.size(),
             " in all)");
  if (added > 0 || !gone.empty())
    announce(self, resource_kind::nodes, urgency::telemetry);
  if ((health_changed || added > 0 || !gone.empty()) && !st.health_announced) {
    st.health_announced = true;
    announce(self, resource_kind::health, urgency::telemetry);
  }
}

}  // namespace

void refresh_from_store(self_ptr self) {
  auto asked_at = self->state.cfg.liveness.now();
  auto again = [self] {
    self->delayed_send(self, self->state.cfg.refresh_every, atom::refresh::value);
  };
  self->request(self->state.persistence, caf::infinite, atom::load::value, atom::node::value)
    .then(
      [self, asked_at, again](loaded_state& loaded) {
        merge(self, loaded.nodes, asked_at);
        again();
      },
      [self, again](caf::error& err) {
        CF_WARN("registry", "cannot read the other members' nodes: ",
                self->system().render(err));
        again();
      });
}

caf::result<std::vector<job_target>> with_store_nodes_impl(
  self_ptr self, std::function<caf::result<std::vector<job_target>>()> then) {
  if (!self->state.cfg.clustered)
    return then();
  auto rp = self->make_response_promise<std::vector<job_target>>();
  auto asked_at = self->state.cfg.liveness.now();
  self->request(self->state.persistence, caf::infinite, atom::load::value, atom::node::value)
    .then(
      [self, rp, then, asked_at](loaded_state& loaded) mutable {
        merge(self, loaded.nodes, asked_at);
        auto r = then();  // resolve_*: a value or an error, never delegated
        if (r.flag == caf::rt_value)
          rp.deliver(r.value.get_as<std::vector<job_target>>(0));
        else
          rp.deliver(std::move(r.err));
      },
      [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

}  // namespace coapfleet::server::registry_detail
