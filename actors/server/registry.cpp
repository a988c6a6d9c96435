#include "actors/server/registry.hpp"
#include "actors/server/registry_internal.hpp"

#include <algorithm>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <unordered_map>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "model/json.hpp"
#include "model/rules.hpp"
#include "actors/replies.hpp"

namespace coapfleet::server {

using namespace registry_detail;

namespace {

caf::error node_down(const std::string& id) {
  return make_api_error(api_errc::internal,
                        "node " + id + " is unavailable: its actor failed too often", "node_id",
                        "node_id", id);
}

bool is_down(registry_state& st, node_map::iterator i) {
  if (i->second.actor)
    return false;
  auto r = st.restarts.find(i->first);
  return r != st.restarts.end() && r->second.down;
}

caf::error unknown_node(const std::string& id) {
  return make_api_error(api_errc::not_found, "node not registered", "node_id", "node_id", id);
}

/// The node's actor: the active one, or one started now (monitored, and
/// routed to by the transport before anything else is sent about the node:
/// the transport processes its mailbox in order).
node_actor activate(self_ptr self, node_map::iterator i) {
  auto& st = self->state;
  auto& e = i->second;
  if (e.actor) {
    // Talking again: the transport's unroute is undone. Not for a node
    // another member owns now: what reaches it meanwhile (a request handed
    // here) goes to the closing actor, whose close comes after.
    if (e.closing && !owned_elsewhere(st, i->first)) {
      e.closing = false;
      self->send(st.transport, atom::route::value, i->first, e.actor);
      schedule(self, i->first, e);
    }
    return e.actor;
  }
  e.actor = spawn_node(self->system(), e.summary, st.cfg.liveness,
                       caf::actor_cast<registry_actor>(self), st.persistence);
  ++st.active;
  self->monitor(e.actor);
  st.node_of.emplace(e.actor.id(), &i->first);
  self->send(st.transport, atom::route::value, i->first, e.actor);
  schedule(self, i->first, e);  // its close
  return e.actor;
}

/// A report of a node served here (its transport, or another member's
/// registry, had no route for it): its actor gets it. 2.04; 4.04 for a node
/// not registered.
coap_reply take_report(self_ptr self, model::health_report&& report, model::millis at) {
  auto& st = self->state;
  auto i = st.nodes.find(report.node_id);
  if (i == st.nodes.end())
    return json_reply(404, model::encode_error("node not registered", {{"node_id", report.node_id}}));
  if (is_down(st, i))
    return error_reply(node_down(i->first));
  self->send(activate(self, i), atom::health::value, std::move(report), at);
  return text_reply(204, "Health status updated");
}

/// Forgets an actor that ended or is being closed (its down message, if
/// any comes, then finds nothing).
void deactivate(registry_state& st, node_entry& e) {
  st.node_of.erase(e.actor.id());
  e.actor = nullptr;
  e.closing = false;
  --st.active;
}

}  // namespace

void registry_detail::add_registered(self_ptr self, const model::node_registration& reg,
                                     model::millis registered_at, model::millis now,
                                     model::node_traits traits) {
  model::node_brief b;
  b.node_id = reg.node_id;
  b.ip_address = reg.ip_address;
  b.port = reg.port;
  b.registered_at = registered_at;
  b.last_seen = now;
  b.traits = std::move(traits);
  add_node(self, b);
}

void registry_detail::add_node(self_ptr self, const model::node_brief& b) {
  auto& st = self->state;
  auto i = st.nodes.emplace(b.node_id, node_entry{}).first;
  auto& e = i->second;
  e.ip_address = b.ip_address;
  e.port = b.port;
  e.registered_at = b.registered_at;
  set_traits(st, e, b.traits);
  auto s = summarize(b);
  s.status = model::liveness(s.last_seen, st.cfg.liveness.now(),
                             st.cfg.liveness.stale_after.count(),
                             st.cfg.liveness.offline_after.count());
  set_summary(st, e, std::move(s));
  schedule(self, i->first, e);
}

namespace {

/// An active node actor went down: started again at once, unless it did so
/// too often (then the node stays down and the transport routes its
/// reports here, where they are refused).
void node_went_down(self_ptr self, const caf::down_msg& msg) {
  auto& st = self->state;
  auto at = st.node_of.find(msg.source.id());
  if (at == st.node_of.end())
    return;  // closed (or not a child any more)
  auto id = *at->second;
  auto i = st.nodes.find(id);
  deactivate(st, i->second);
  CF_WARN("registry", "node actor of ", id, " went down: ", caf::to_string(msg.reason));
  if (owned_elsewhere(st, id)) {
    // Another member owns it now: not started again here (its next report
    // goes to the owner); the transport's route goes.
    self->send(st.transport, atom::unroute::value, id);
    return;
  }
  auto& r = st.restarts[id];
  auto now = st.cfg.liveness.now();
  auto since = now - static_cast<model::millis>(st.cfg.restart_window.count());
  r.times.erase(std::remove_if(r.times.begin(), r.times.end(),
                               [since](model::millis t) { return t <= since; }),
                r.times.end());
  if (r.times.size() >= st.cfg.max_restarts) {
    CF_ERROR("registry", "node actor of ", id, " went down ", r.times.size() + 1,
             " times within ", st.cfg.restart_window.count() / 1000,
             " s: it stays down, its requests answer 5.00");
    r.down = true;
    self->send(st.transport, atom::unroute::value, id);
    return;
  }
  r.times.push_back(now);
  activate(self, i);
  CF_INFO("registry", "node actor of ", id, " restarted (its record is read from the store)");
}

}  // namespace

void registry_detail::begin_close(self_ptr self, const std::string& id, node_entry& e) {
  e.closing = true;
  self->send(self->state.transport, atom::unroute::value, id);
}

namespace {

/// A re-registration of a known node: its actor (if active) takes the new
/// registration; the answer leaves once the registry's summary has it.
void reenroll(self_ptr self, node_map::iterator i, model::node_registration reg,
              model::millis now, caf::typed_response_promise<registered> rp,
              registered result) {
  auto done = [self, rp, result]() mutable {
    announce(self, resource_kind::nodes, urgency::control);
    announce(self, resource_kind::health, urgency::control);
    rp.deliver(std::move(result));
  };
  if (!i->second.actor) {  // quiet: the store has the registration, the summary the time
    auto s = i->second.summary;
    s.last_seen = std::max(s.last_seen, now);
    take_summary(self, std::move(s), false);
    return done();
  }
  if (i->second.closing)
    activate(self, i);
  self->request(i->second.actor, caf::infinite, atom::enroll::value, std::move(reg), now)
    .then(
      [self, done](node_summary& s) mutable {
        take_summary(self, std::move(s), false);
        done();
      },
      // It died meanwhile: its restart reads the committed registration.
      [done](caf::error&) mutable { done(); });
}

}  // namespace

namespace {

}  // namespace

/// A deleted node (durable): its actor is closed, its entry and counts go,
/// readers and observers hear of it.
void registry_detail::forget_node(self_ptr self, const std::string& id) {
  auto& st = self->state;
  auto i = st.nodes.find(id);
  if (i == st.nodes.end())
    return;
  auto& e = i->second;
  if (e.actor) {
    // Routes first: whatever the transport routed is ahead of the close.
    self->send(st.transport, atom::unroute::value, id);
    auto actor = e.actor;
    deactivate(st, e);
    self->send(actor, atom::close::value);
  }
  st.tally.count(e.summary, -1);
  set_traits(st, e, {});
  st.nodes.erase(i);
  st.restarts.erase(id);
  CF_INFO("registry", "node ", id, " deleted (", st.nodes.size(), " registered)");
  self->send(st.transport, atom::forget::value, resource{resource_kind::node_health, id});
  note_change(st, id);
  announce(self, resource_kind::nodes, urgency::control);
  announce(self, resource_kind::health, urgency::control);
}


registry_actor spawn_registry(caf::actor_system& sys, registry_config cfg,
                              std::vector<model::node_brief> nodes,
                              persistence_actor persistence, transport_actor transport) {
  // CAF keeps the spawn arguments for the actor's lifetime: the briefs go
  // in through a holder that is emptied.
  auto fn = [](self_ptr self, registry_config cfg,
               std::shared_ptr<std::vector<model::node_brief>> nodes,
               persistence_actor persistence,
               transport_actor transport) -> registry_actor::behavior_type {
    auto& st = self->state;
    st.cfg = cfg;
    st.persistence = std::move(persistence);
    st.transport = std::move(transport);
    self->set_down_handler([self](caf::down_msg& msg) { node_went_down(self, msg); });
    st.nodes.reserve(nodes->size());
    for (auto& n : *nodes)
      add_node(self, n);
    nodes->clear();
    nodes->shrink_to_fit();
    CF_INFO("registry", "started with ", st.nodes.size(), " nodes");
    if (st.cfg.clustered)
      self->delayed_send(self, st.cfg.refresh_every, atom::refresh::value);
    return {
      [self](atom::enroll, model::node_registration& reg,
             const peer& from) -> caf::result<registered> {
        if (auto owner = owner_elsewhere(self, reg.node_id); !owner.empty())
          return enroll_elsewhere(self, owner, std::move(reg), from);
        auto& st = self->state;
        auto now = st.cfg.liveness.now();
        auto i = st.nodes.find(reg.node_id);
        if (i != st.nodes.end() && is_down(st, i))
          return node_down(reg.node_id);
        if (i == st.nodes.end() && st.cfg.max_nodes != 0 && st.nodes.size() >= st.cfg.max_nodes)
          return make_api_error(api_errc::too_many,
                                "node limit reached: " + std::to_string(st.nodes.size())
                                  + " nodes are registered (--max-nodes); delete nodes "
                                    "that are gone or raise the limit",
                                "node_id", "retry_after_seconds", "60");
        auto registered_at = i != st.nodes.end() ? i->second.registered_at : now;
        // Labels and inventory take effect at once (what comes next is laid
        // over them, in the order the store gets them).
        bool was_new = i == st.nodes.end();
        auto traits = registered_traits(reg, i != st.nodes.end() ? &i->second : nullptr);
        if (i != st.nodes.end() && !(traits_of(i->second) == traits)) {
          set_traits(st, i->second, traits);
          if (i->second.summary.status == model::node_status::online)
            joined(self, reg.node_id, i->second);  // it may match a dynamic campaign now
        }
        write_batch batch;
        batch.ops.emplace_back(put_node{reg, registered_at, now, traits.operator_labels});
        auto rp = self->make_response_promise<registered>();
        self->request(st.persistence, caf::infinite, atom::write::value, std::move(batch))
          .then(
            [self, rp, reg, registered_at, now, from, traits, was_new](atom::ok) mutable {
              auto& st = self->state;
              auto i = st.nodes.find(reg.node_id);
              registered result{reg.node_id, i == st.nodes.end()};
              if (i == st.nodes.end()) {
                CF_INFO("registry", "node ", reg.node_id, " registered at ", reg.ip_address,
                        ":", reg.port, " (from ", from.address, ":", from.port, ")");
                add_registered(self, reg, registered_at, now, std::move(traits));
              } else {
                CF_DEBUG("registry", "node ", reg.node_id, " re-registered at ",
                         reg.ip_address, ":", reg.port);
                i->second.ip_address = reg.ip_address;
                i->second.port = reg.port;
                if (was_new)  // registered twice at once: the later one's traits hold
                  set_traits(st, i->second, traits);
                if (is_down(st, i)) {  // it went down during the commit
                  rp.deliver(node_down(reg.node_id));
                  return;
                }
                reenroll(self, i, std::move(reg), now, rp, std::move(result));
                return;
              }
              joined(self, reg.node_id, st.nodes.find(reg.node_id)->second);
              // Control changes: the 2.01 leaves once GET /nodes and /health show it.
              announce(self, resource_kind::nodes, urgency::control);
              announce(self, resource_kind::health, urgency::control);
              rp.deliver(std::move(result));
            },
            [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [self](atom::observe, caf::actor& joiners) { self->state.joiners = std::move(joiners); },
      [self](atom::remove, const std::string& id) -> caf::result<atom::ok> {
        if (auto owner = owner_elsewhere(self, id); !owner.empty())
          return remove_elsewhere(self, owner, id);
        auto& st = self->state;
        if (st.nodes.find(id) == st.nodes.end())
          return make_api_error(api_errc::not_found, "node not registered", "node_id",
                                "node_id", id);
        write_batch batch;
        batch.ops.emplace_back(model::drop_node{id});
        auto rp = self->make_response_promise<atom::ok>();
        self->request(st.persistence, caf::infinite, atom::write::value, std::move(batch))
          .then(
            [self, rp, id](atom::ok) mutable {
              forget_node(self, id);
              rp.deliver(atom::ok::value);
            },
            [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [self](atom::get, const std::string& id) -> caf::result<model::node_record> {
        if (auto owner = owner_elsewhere(self, id); !owner.empty())
          return owner_answers<model::node_record>(self, owner, atom::get::value, id);
        auto& st = self->state;
        auto i = st.nodes.find(id);
        if (i == st.nodes.end())
          return unknown_node(id);
        if (is_down(st, i))
          return node_down(id);
        // Labels and inventory are the registry's (an operator's change and
        // an agent's inventory do not pass through the node's actor).
        auto rp = self->make_response_promise<model::node_record>();
        self->request(activate(self, i), caf::infinite, atom::get::value)
          .then(
            [self, rp, id](model::node_record& rec) mutable {
              auto i = self->state.nodes.find(id);
              if (i != self->state.nodes.end()) {
                auto& t = traits_of(i->second);
                rec.reg.labels = t.labels;
                rec.reg.inventory = t.inventory;
              }
              rp.deliver(std::move(rec));
            },
            [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [self](atom::health, uint64_t req, model::health_report& report, model::millis at) {
        if (auto owner = owner_elsewhere(self, report.node_id); !owner.empty())
          return report_elsewhere(self, owner, req, std::move(report), at);
        self->send(self->state.transport, atom::health::value, req,
                   take_report(self, std::move(report), at));
      },
      [self](atom::health, model::health_report& report, model::millis at) -> coap_reply {
        return take_report(self, std::move(report), at);
      },
      [self](atom::cluster, cluster_view& v) { take_view(self, std::move(v)); },
      [self](atom::observe, const std::string& id, bool on) { observe_here(self, id, on); },
      [self](atom::watch, const std::string& id, bool on) { watch_from(self, id, on); },
      [self](atom::changed, const std::string& id) { changed_elsewhere(self, id); },
      [self](atom::unroute, const std::string& id) {
        // The transport routes nothing more to the actor: every report it
        // routed there is ahead of this close in the actor's mailbox.
        auto& st = self->state;
        auto i = st.nodes.find(id);
        if (i == st.nodes.end() || !i->second.actor || !i->second.closing)
          return;  // talking again (routed anew), or not closing
        auto actor = i->second.actor;
        deactivate(st, i->second);
        self->send(actor, atom::close::value);
        schedule(self, id, i->second);
        CF_DEBUG("registry", "node ", id, " is quiet: its actor is closed (", st.active,
                 " active)");
        st.last_close = st.cfg.liveness.now();
        if (++st.closed_since_trim >= registry_state::trim_after_closes && !st.trim_timer) {
          st.trim_timer = true;
          self->delayed_send(self, registry_state::trim_delay, atom::trim::value);
        }
      },
      [self](atom::changes, uint64_t id) {
        auto& st = self->state;
        node_changes c;
        c.from = st.changes_seq;
        c.to = ++st.changes_seq;
        c.reset = st.changes_reset;
        c.ids.assign(st.changed.begin(), st.changed.end());
        std::sort(c.ids.begin(), c.ids.end());
        st.changed.clear();
        st.changes_reset = false;
        // The reader renders them from the database: first everything the
        // node actors sent the persistence actor before these changes
        // reached the registry is committed (their reports included).
        auto shared = std::make_shared<node_changes>(std::move(c));
        auto pass = [self, id, shared] {
          self->send(self->state.transport, atom::changes::value, id, std::move(*shared));
        };
        self->request(st.persistence, caf::infinite, atom::sync::value)
          .then([pass](atom::ok) { pass(); }, [pass](caf::error&) { pass(); });
      },
      [self](atom::trim) {
        // Many actors were closed (a burst is over): their memory, freed in
        // the middle of the heap, goes back to the system, so the resting
        // RSS returns. Once closing has paused for trim_delay (a trim walks
        // the whole heap).
        auto& st = self->state;
        auto quiet_for = st.cfg.liveness.now() - st.last_close;
        if (quiet_for < registry_state::trim_delay.count() * 1000) {
          // Still closing (a burst ending): once, when the closing is over.
          self->delayed_send(self, registry_state::trim_delay, atom::trim::value);
          return;
        }
        st.trim_timer = false;
        CF_INFO("registry", st.closed_since_trim, " node actors closed (", st.active,
                " active of ", st.nodes.size(), "): returning freed memory");
        st.closed_since_trim = 0;
#ifdef __GLIBC__
        malloc_trim(0);
#endif
      },
      [self](atom::health) -> model::fleet_health {
        auto& st = self->state;
        st.health_announced = false;
        model::fleet_health h;
        h.timestamp = st.cfg.liveness.now();
        auto& t = st.tally;
        h.total_nodes = static_cast<uint32_t>(st.nodes.size());
        h.online_nodes = t.online;
        h.stale_nodes = t.stale;
        h.offline_nodes = t.offline;
        h.healthy_nodes = t.healthy;
        h.unhealthy_nodes = t.unhealthy;
        auto limit = st.cfg.health_list_max ? st.cfg.health_list_max : t.unhealthy_ids.size();
        for (auto& id : t.unhealthy_ids) {
          if (h.unhealthy.size() == limit)
            break;
          auto i = st.nodes.find(id);
          if (i != st.nodes.end())
            h.unhealthy.push_back({id, i->second.summary.error_messages});
        }
        h.unhealthy_more = static_cast<uint32_t>(t.unhealthy_ids.size() - h.unhealthy.size());
        h.status = model::fleet_status(h.total_nodes, t.online_healthy);
        return h;
      },
      [self](atom::summary, node_summary& s) { take_summary(self, std::move(s), true); },
      [self](atom::deadline) { liveness_due(self); },
      [self](atom::tick) {
        auto& st = self->state;
        st.nodes_timer = false;
        if (!st.nodes_dirty)
          return;
        st.nodes_dirty = false;
        announce(self, resource_kind::nodes, urgency::telemetry);
        st.nodes_timer = true;
        self->delayed_send(self, registry_state::nodes_every, atom::tick::value);
      },
      [self](atom::resolve,
             const std::vector<std::string>& ids) -> caf::result<std::vector<job_target>> {
        return with_store_nodes<std::vector<job_target>>(self, [self, ids] {
          return resolve_ids(self, ids, false);
        });
      },
      [self](atom::resolve, const std::vector<std::string>& ids,
             bool known_only) -> caf::result<std::vector<job_target>> {
        return with_store_nodes<std::vector<job_target>>(self, [self, ids, known_only] {
          return resolve_ids(self, ids, known_only);
        });
      },
      [self](atom::resolve, const model::job_spec& spec) -> caf::result<std::vector<job_target>> {
        return with_store_nodes<std::vector<job_target>>(self, [self, spec] {
          return resolve_spec(self, spec);
        });
      },
      [self](atom::label, const std::string& id,
             const model::string_map& change) -> caf::result<model::string_map> {
        if (auto owner = owner_elsewhere(self, id); !owner.empty())
          return owner_answers<model::string_map>(self, owner, atom::label::value, id, change);
        return relabel(self, id, change);
      },
      [self](atom::inventory, const std::string& id,
             model::string_map& inventory) -> caf::result<atom::ok> {
        if (auto owner = owner_elsewhere(self, id); !owner.empty())
          return owner_answers<atom::ok>(self, owner, atom::inventory::value, id,
                                         std::move(inventory));
        return take_inventory(self, id, std::move(inventory));
      },
      [self](atom::count) -> uint32_t {
        return static_cast<uint32_t>(self->state.nodes.size());
      },
      [self](atom::refresh) { refresh_from_store(self); },
      [self](atom::count, atom::node) -> uint32_t {
        return static_cast<uint32_t>(self->state.active);
      },
    };
  };
  return sys.spawn(fn, std::move(cfg),
                   std::make_shared<std::vector<model::node_brief>>(std::move(nodes)),
                   std::move(persistence),
                   std::move(transport));
}

}  // namespace coapfleet::server
