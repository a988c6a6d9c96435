#include "actors/server/registry.hpp"

#include <algorithm>
#include <map>
#include <memory>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "model/rules.hpp"

namespace coapfleet::server {

namespace {

struct node_entry {
  node_actor actor;
  node_summary summary;
  std::string ip_address;
  uint16_t port = 5683;
  model::millis registered_at = 0;
};

struct registry_state {
  static inline const char* name = "registry";
  registry_config cfg;
  std::map<std::string, node_entry> nodes;  ///< sorted: listings come out in order
  persistence_actor persistence;
  transport_actor transport;
};

using self_ptr = registry_actor::stateful_pointer<registry_state>;

void add_node(self_ptr self, model::node_record record) {
  auto& st = self->state;
  auto id = record.reg.node_id;
  node_entry e;
  e.ip_address = record.reg.ip_address;
  e.port = record.reg.port;
  e.registered_at = record.registered_at;
  e.summary.node_id = id;
  e.actor = spawn_node(self->system(), std::move(record), st.cfg.liveness,
                       caf::actor_cast<registry_actor>(self), st.persistence);
  self->link_to(e.actor);  // node actors end with the registry
  // The route goes out before any answer about this node: the transport
  // processes its mailbox in order, so a PUT /health right after the 2.01 finds it.
  self->send(st.transport, atom::route::value, id, e.actor);
  st.nodes.emplace(id, std::move(e));
}

/// Collects the answers of a fan-out to node actors.
struct node_collector {
  caf::typed_response_promise<std::vector<model::node_record>> rp;
  std::vector<model::node_record> out;
  size_t expected = 0;
  size_t received = 0;
  std::string status_filter;
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
    for (auto& n : nodes)
      add_node(self, std::move(n));
    CF_INFO("registry", "started with ", st.nodes.size(), " nodes");
    return {
      [self](atom::enroll, model::node_registration& reg,
             const peer& from) -> caf::result<registered> {
        auto& st = self->state;
        auto now = st.cfg.liveness.now();
        auto i = st.nodes.find(reg.node_id);
        auto registered_at = i != st.nodes.end() ? i->second.registered_at : now;
        write_batch batch;
        batch.ops.emplace_back(put_node{reg, registered_at, now});
        auto rp = self->make_response_promise<registered>();
        self->request(st.persistence, caf::infinite, atom::write::value, std::move(batch))
          .then(
            [self, rp, reg, registered_at, now, from](bool) mutable {
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
                self->send(i->second.actor, atom::enroll::value, std::move(reg), now);
              }
              // Control changes: the 2.01 leaves once GET /nodes and /health show it.
              self->send(self->state.transport, atom::changed::value,
                         resource{resource_kind::nodes, {}}, urgency::control);
              self->send(self->state.transport, atom::changed::value,
                         resource{resource_kind::health, {}}, urgency::control);
              rp.deliver(std::move(result));
            },
            [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [self](atom::list,
             const node_filter& filter) -> caf::result<std::vector<model::node_record>> {
        auto& st = self->state;
        auto c = std::make_shared<node_collector>();
        c->rp = self->make_response_promise<std::vector<model::node_record>>();
        c->status_filter = filter.status;
        std::vector<node_actor> targets;
        if (!filter.node_id.empty()) {
          auto i = st.nodes.find(filter.node_id);
          if (i != st.nodes.end())
            targets.push_back(i->second.actor);
        } else {
          targets.reserve(st.nodes.size());
          for (auto& kv : st.nodes)
            targets.push_back(kv.second.actor);
        }
        c->expected = targets.size();
        c->out.reserve(targets.size());
        if (targets.empty()) {
          c->rp.deliver(std::vector<model::node_record>{});
          return c->rp;
        }
        for (auto& t : targets)
          self->request(t, std::chrono::seconds(10), atom::get::value)
            .then(
              [c](model::node_record& r) {
                c->out.emplace_back(std::move(r));
                c->done_one();
              },
              [c](caf::error&) { c->done_one(); });
        return c->rp;
      },
      [self](atom::health) -> model::fleet_health {
        auto& st = self->state;
        model::fleet_health h;
        h.timestamp = st.cfg.liveness.now();
        uint32_t online_healthy = 0;
        for (auto& kv : st.nodes) {
          auto& s = kv.second.summary;
          ++h.total_nodes;
          switch (s.status) {
            case model::node_status::online: ++h.online_nodes; break;
            case model::node_status::stale: ++h.stale_nodes; break;
            case model::node_status::offline: ++h.offline_nodes; break;
          }
          if (s.has_health && s.healthy)
            ++h.healthy_nodes;
          if (s.has_health && !s.healthy) {
            ++h.unhealthy_nodes;
            h.unhealthy.push_back({s.node_id, s.error_messages});
          }
          if (s.status == model::node_status::online && s.healthy)
            ++online_healthy;
        }
        h.status = model::fleet_status(h.total_nodes, online_healthy);
        return h;
      },
      [self](atom::summary, node_summary& s) {
        auto& st = self->state;
        auto i = st.nodes.find(s.node_id);
        if (i != st.nodes.end()) {
          i->second.summary = std::move(s);
          self->send(st.transport, atom::changed::value, resource{resource_kind::health, {}},
                     urgency::telemetry);
          self->send(st.transport, atom::changed::value, resource{resource_kind::nodes, {}},
                     urgency::telemetry);
        }
      },
      [self](atom::resolve,
             const std::vector<std::string>& ids) -> caf::result<std::vector<job_target>> {
        auto& st = self->state;
        std::vector<job_target> out;
        auto to_target = [](const node_entry& e) {
          return job_target{e.summary.node_id, e.ip_address, e.port, e.summary.status};
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
