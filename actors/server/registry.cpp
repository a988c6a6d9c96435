#include "actors/server/registry.hpp"
#include "actors/server/registry_internal.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <unordered_map>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "model/json.hpp"
#include "model/rules.hpp"

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

/// Spawns a node's actor, monitors it and routes the transport to it.
void start_node(self_ptr self, node_map::iterator i, model::node_record record) {
  auto& st = self->state;
  auto& e = i->second;
  // The registry's first summary of the node; its actor sends the next ones.
  record.status = model::liveness(record.last_seen, st.cfg.liveness.now(),
                                  st.cfg.liveness.stale_after.count(),
                                  st.cfg.liveness.offline_after.count());
  set_summary(st, e, summarize(record));
  schedule(self, i->first, e);
  e.actor = spawn_node(self->system(), std::move(record), st.cfg.liveness,
                       caf::actor_cast<registry_actor>(self), st.persistence);
  self->monitor(e.actor);
  auto aid = e.actor.id();
  auto at = std::lower_bound(st.node_of.begin(), st.node_of.end(), aid,
                             [](const auto& x, caf::actor_id k) { return x.first < k; });
  st.node_of.insert(at, {aid, &i->first});
  // The route goes out before any answer about this node: the transport
  // processes its mailbox in order, so a PUT /health right after the 2.01 finds it.
  self->send(st.transport, atom::route::value, i->first, e.actor);
}

void add_node(self_ptr self, model::node_record record) {
  auto& st = self->state;
  auto id = record.reg.node_id;
  node_entry e;
  e.ip_address = record.reg.ip_address;
  e.port = record.reg.port;
  e.registered_at = record.registered_at;
  auto i = st.nodes.emplace(id, std::move(e)).first;
  start_node(self, i, std::move(record));
}

/// Runs `f` with the node's actor: now, once it is back, or with the error.
template <class F>
void with_node(registry_state& st, node_map::iterator i, F f) {
  if (i->second.actor)
    return f(i->second.actor);
  auto& r = st.restarts[i->first];
  if (r.down)
    f(node_down(i->first));
  else
    r.waiting.push_back(std::move(f));
}

void release_waiting(node_restarts& r, const caf::expected<node_actor>& to) {
  auto waiting = std::move(r.waiting);
  r.waiting.clear();
  for (auto& f : waiting)
    f(to);
}

/// A node actor went down: restart it from the store, unless it did so too often.
void node_went_down(self_ptr self, const caf::down_msg& msg) {
  auto& st = self->state;
  auto aid = msg.source.id();
  auto at = std::lower_bound(st.node_of.begin(), st.node_of.end(), aid,
                             [](const auto& x, caf::actor_id k) { return x.first < k; });
  if (at == st.node_of.end() || at->first != aid)
    return;  // not a child any more
  auto id = *at->second;
  st.node_of.erase(at);
  auto i = st.nodes.find(id);
  i->second.actor = nullptr;
  CF_WARN("registry", "node actor of ", id, " went down: ", caf::to_string(msg.reason));
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
    release_waiting(r, node_down(id));
    return;
  }
  r.times.push_back(now);
  self->request(st.persistence, caf::infinite, atom::load::value, atom::node::value, id)
    .then(
      [self, id](model::node_record& rec) {
        auto& st = self->state;
        auto i = st.nodes.find(id);
        if (i == st.nodes.end() || i->second.actor)
          return;
        start_node(self, i, std::move(rec));
        CF_INFO("registry", "node actor of ", id, " restarted from the store");
        release_waiting(st.restarts[id], i->second.actor);
      },
      [self, id](caf::error& err) {
        CF_ERROR("registry", "node actor of ", id, " cannot be restarted, it stays down: ",
                 caf::to_string(err));
        auto& r = self->state.restarts[id];
        r.down = true;
        release_waiting(r, node_down(id));
      });
}

/// Collects the answers of a fan-out to node actors.
struct node_collector {
  caf::typed_response_promise<std::vector<model::node_record>> rp;
  std::vector<model::node_record> out;
  size_t expected = 0;
  size_t received = 0;
  std::string status_filter;
  /// The nodes to ask, and the next one: at most `window` asked at a time,
  /// so the answers of a large fleet never sit in the mailbox all at once.
  std::vector<node_map::iterator> targets;
  size_t next = 0;
  static constexpr size_t window = 256;
  void done_one() {
    if (++received < expected)
      return;
    if (!status_filter.empty())
      out.erase(std::remove_if(out.begin(), out.end(),
                               [&](const model::node_record& r) {
                                 return to_string(r.status) != status_filter;
                               }),
                out.end());
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return a.reg.node_id < b.reg.node_id;
    });
    rp.deliver(std::move(out));
  }
};

/// Asks the collector's next nodes for their records, `window` at a time.
/// A restarting node answers once it is back; one that stays down is left out.
/// No timeout per node: in CAF 0.17 each request timeout is a timer message
/// that lives its full time even after the answer came, and listings of
/// 10,000 nodes rendered a few times a second left hundreds of thousands of
/// them. The caller's request (the gateway's) bounds the whole listing.
void ask_nodes(self_ptr self, std::shared_ptr<node_collector> c) {
  auto& st = self->state;
  while (c->next < c->targets.size() && c->next - c->received < node_collector::window) {
    auto i = c->targets[c->next++];
    with_node(st, i, [self, c](const caf::expected<node_actor>& a) {
      if (!a) {
        c->done_one();
        return ask_nodes(self, c);
      }
      self->request(*a, caf::infinite, atom::get::value)
        .then(
          [self, c](model::node_record& r) {
            c->out.emplace_back(std::move(r));
            c->done_one();
            ask_nodes(self, c);
          },
          [self, c](caf::error&) {
            c->done_one();
            ask_nodes(self, c);
          });
    });
  }
}

}  // namespace

registry_actor spawn_registry(caf::actor_system& sys, registry_config cfg,
                              std::vector<model::node_record> nodes,
                              persistence_actor persistence, transport_actor transport) {
  auto fn = [](self_ptr self, registry_config cfg, std::vector<model::node_record> nodes,
               persistence_actor persistence,
               transport_actor transport) -> registry_actor::behavior_type {
    auto& st = self->state;
    st.cfg = cfg;
    st.persistence = std::move(persistence);
    st.transport = std::move(transport);
    self->set_down_handler([self](caf::down_msg& msg) { node_went_down(self, msg); });
    for (auto& n : nodes)
      add_node(self, std::move(n));
    CF_INFO("registry", "started with ", st.nodes.size(), " nodes");
    return {
      [self](atom::enroll, model::node_registration& reg,
             const peer& from) -> caf::result<registered> {
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
        write_batch batch;
        batch.ops.emplace_back(put_node{reg, registered_at, now});
        auto rp = self->make_response_promise<registered>();
        self->request(st.persistence, caf::infinite, atom::write::value, std::move(batch))
          .then(
            [self, rp, reg, registered_at, now, from](atom::ok) mutable {
              auto& st = self->state;
              auto i = st.nodes.find(reg.node_id);
              registered result{reg.node_id, i == st.nodes.end()};
              if (i == st.nodes.end()) {
                CF_INFO("registry", "node ", reg.node_id, " registered at ", reg.ip_address,
                        ":", reg.port, " (from ", from.address, ":", from.port, ")");
                model::node_record rec;
                rec.reg = std::move(reg);
                rec.registered_at = registered_at;
                rec.last_seen = now;
                add_node(self, std::move(rec));
              } else {
                CF_DEBUG("registry", "node ", reg.node_id, " re-registered at ",
                         reg.ip_address, ":", reg.port);
                i->second.ip_address = reg.ip_address;
                i->second.port = reg.port;
                if (is_down(st, i)) {  // it went down during the commit
                  rp.deliver(node_down(reg.node_id));
                  return;
                }
                // The answer waits for the node actor's new summary, so that
                // the listing rendered after it shows the new registration.
                with_node(st, i, [self, rp, reg, now, result](const caf::expected<node_actor>& a) mutable {
                  if (!a) {
                    rp.deliver(a.error());
                    return;
                  }
                  auto done = [self, rp, result]() mutable {
                    announce(self, resource_kind::nodes, urgency::control);
                    announce(self, resource_kind::health, urgency::control);
                    rp.deliver(std::move(result));
                  };
                  self->request(*a, caf::infinite, atom::enroll::value, reg, now)
                    .then(
                      [self, done](node_summary& s) mutable {
                        take_summary(self, std::move(s), false);
                        done();
                      },
                      // It died meanwhile: its restart loads the committed registration.
                      [done](caf::error&) mutable { done(); });
                });
                return;
              }
              // Control changes: the 2.01 leaves once GET /nodes and /health show it.
              announce(self, resource_kind::nodes, urgency::control);
              announce(self, resource_kind::health, urgency::control);
              rp.deliver(std::move(result));
            },
            [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [self](atom::list,
             const node_filter& filter) -> caf::result<std::vector<model::node_record>> {
        auto& st = self->state;
        std::vector<node_map::iterator> targets;
        if (!filter.node_id.empty()) {
          auto i = st.nodes.find(filter.node_id);
          if (i != st.nodes.end()) {
            if (is_down(st, i))
              return node_down(i->first);
            targets.push_back(i);
          }
        } else {
          targets.reserve(st.nodes.size());
          for (auto i = st.nodes.begin(); i != st.nodes.end(); ++i)
            targets.push_back(i);
        }
        auto c = std::make_shared<node_collector>();
        c->rp = self->make_response_promise<std::vector<model::node_record>>();
        c->status_filter = filter.status;
        c->expected = targets.size();
        c->out.reserve(targets.size());
        if (targets.empty()) {
          c->rp.deliver(std::vector<model::node_record>{});
          return c->rp;
        }
        c->targets = std::move(targets);
        ask_nodes(self, c);
        return c->rp;
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
        for (auto& id : t.unhealthy_ids) {
          auto i = st.nodes.find(id);
          if (i != st.nodes.end())
            h.unhealthy.push_back({id, i->second.summary.error_messages});
        }
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
        auto& st = self->state;
        std::vector<job_target> out;
        // Liveness as of this moment (the counts follow within a deadline bucket).
        auto now = st.cfg.liveness.now();
        auto to_target = [&st, now](const node_entry& e) {
          return job_target{e.summary.node_id, e.ip_address, e.port,
                            model::liveness(e.summary.last_seen, now,
                                            st.cfg.liveness.stale_after.count(),
                                            st.cfg.liveness.offline_after.count())};
        };
        if (ids.size() == 1 && ids[0] == "all") {
          for (auto& kv : st.nodes)
            out.push_back(to_target(kv.second));
          return out;
        }
        std::string unknown;
        for (auto& id : ids) {
          auto i = st.nodes.find(id);
          if (i == st.nodes.end()) {
            unknown += unknown.empty() ? "" : ", ";
            unknown += id;
          } else {
            out.push_back(to_target(i->second));
          }
        }
        if (!unknown.empty())
          return make_api_error(api_errc::not_found, "unknown target nodes: " + unknown,
                                "target_nodes");
        std::sort(out.begin(), out.end(),
                  [](const auto& a, const auto& b) { return a.node_id < b.node_id; });
        out.erase(std::unique(out.begin(), out.end(),
                              [](const auto& a, const auto& b) { return a.node_id == b.node_id; }),
                  out.end());
        return out;
      },
      [self](atom::count) -> uint32_t {
        return static_cast<uint32_t>(self->state.nodes.size());
      },
    };
  };
  return sys.spawn(fn, std::move(cfg), std::move(nodes), std::move(persistence),
                   std::move(transport));
}

}  // namespace coapfleet::server
