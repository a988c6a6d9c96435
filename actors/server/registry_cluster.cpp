// The registry of a cluster member. Each node is owned by one live member,
// the one rendezvous hashing of its id picks over the live members
// (model::owner_of, the same answer on every member): its actor runs
// there. Agents talk to any member (the one they were given first, then
// the next when it stops answering); a member hands what it gets for a
// node it does not own to the owner's registry (registrations, reports it
// has no route for, reads, label and inventory changes, deletions), once:
// a request from another member is served where it arrives, so members
// that see the cluster differently for a moment do not pass it around.
// When the live members change, the actors of nodes another member owns
// now are closed (their next reports go there); a fenced member is not
// among the live members, so it owns none.
//
// What the other members' nodes did reaches this member through the
// shared store: every refresh_every, and before job targets are resolved,
// the registry reads every node's brief and takes, for each node it does
// not serve, its registration (address, traits), its last contact and its
// latest health. GET /health and the job targets then cover the whole
// fleet on every member, at most refresh_every late for nodes served
// elsewhere.
#include <algorithm>
#include <unordered_set>

#include "actors/replies.hpp"
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

std::string owner_elsewhere(self_ptr self, const std::string& id) {
  auto& st = self->state;
  if (st.me.empty())
    return {};
  if (from_member(self))
    return {};  // handed here by another member: served here
  auto owner = model::owner_of(id, st.live);
  return owner == st.me ? std::string{} : owner;  // none live: served here
}

caf::error owner_unavailable(const std::string& owner, const caf::error& why) {
  return make_api_error(api_errc::unavailable,
                        why ? "member " + owner + ", which owns the node, did not answer; retry"
                            : "the node is owned by member " + owner
                                + ", which this member has no link to yet; retry",
                        "node_id", "member_id", owner);
}

bool owned_elsewhere(const registry_state& st, const std::string& id) {
  if (st.me.empty())
    return false;
  auto owner = model::owner_of(id, st.live);
  return !owner.empty() && owner != st.me;
}

void take_view(self_ptr self, cluster_view v) {
  auto& st = self->state;
  st.peers.clear();
  for (auto& p : v.peers)
    if (p.nodes)
      st.peers[p.member_id] = caf::actor_cast<registry_actor>(p.nodes);
  // Nodes are owned among the live members this one can hand requests to:
  // a member whose link is down (killed: at once, not when its lease
  // lapses) or not yet up owns none here, so no node waits for it.
  std::vector<std::string> live;
  for (auto& m : v.live)
    if (m == v.me || st.peers.count(m))
      live.push_back(m);
  bool changed = st.me != v.me || st.live != live;
  st.me = std::move(v.me);
  st.live = std::move(live);
  // Requests handed to a member that went away are answered now (retry).
  st.remote_calls.fail_gone([&st](const std::string& m) { return st.peers.count(m) > 0; });
  // Actors of nodes owned elsewhere close (the transport's routes go
  // first, so what it routed is ahead of the close); reports the transport
  // then has no route for are handed to their owner. Every view, not only
  // a changed one: an actor started here since for a request another
  // member handed on (members that saw the cluster differently for a
  // moment) closes too. O(active actors).
  std::vector<std::string> moved;
  for (auto& [actor, id] : st.node_of)
    if (owned_elsewhere(st, *id))
      moved.push_back(*id);
  size_t closing = 0;
  for (auto& id : moved) {
    auto i = st.nodes.find(id);
    if (i != st.nodes.end() && i->second.actor && !i->second.closing) {
      begin_close(self, id, i->second);
      ++closing;
    }
  }
  retarget_watches(self);
  if (!changed) {
    if (closing > 0)
      CF_DEBUG("registry", closing, " actors of nodes other members own closed");
    return;
  }
  CF_INFO("registry", "nodes owned among: ", st.live.empty() ? "none known" : member_list(st.live),
          std::find(st.live.begin(), st.live.end(), st.me) == st.live.end()
            ? " (not this member: it owns no node)"
            : "",
          "; ", closing, " active nodes moved to other members");
  // The nodes this member owns now: what the others last wrote of them
  // (registrations, labels) is read at once, not at the next refresh.
  refresh_now(self);
}

caf::result<registered> enroll_elsewhere(self_ptr self, const std::string& owner,
                                         model::node_registration reg, const peer& from) {
  auto rp = self->make_response_promise<registered>();
  auto kept = reg;
  ask_owner<registered>(
    self, owner,
    [self, rp, reg = std::move(kept)](caf::expected<registered> r) mutable {
      if (!r) {
        rp.deliver(std::move(r.error()));
        return;
      }
      // This member's directory has the node at once too (GET /health
      // here counts it), not at the next read of the store. The owner
      // told the job supervisors (theirs hear of it from there).
      auto& st = self->state;
      auto now = st.cfg.liveness.now();
      auto i = st.nodes.find(reg.node_id);
      auto traits = registered_traits(reg, i != st.nodes.end() ? &i->second : nullptr);
      if (i == st.nodes.end()) {
        add_registered(self, reg, now, now, std::move(traits));
        note_change(st, reg.node_id);
      } else if (!i->second.actor) {
        i->second.ip_address = reg.ip_address;
        i->second.port = reg.port;
        set_traits(st, i->second, std::move(traits));
        auto sum = i->second.summary;  // heard of now: online here too
        sum.last_seen = std::max(sum.last_seen, now);
        take_summary(self, std::move(sum), false);
      }
      announce(self, resource_kind::nodes, urgency::control);
      announce(self, resource_kind::health, urgency::control);
      rp.deliver(std::move(*r));
    },
    atom::enroll::value, std::move(reg), from);
  return rp;
}

caf::result<atom::ok> remove_elsewhere(self_ptr self, const std::string& owner,
                                       const std::string& id) {
  auto rp = self->make_response_promise<atom::ok>();
  ask_owner<atom::ok>(
    self, owner,
    [self, rp, id](caf::expected<atom::ok> r) mutable {
      if (!r) {
        rp.deliver(std::move(r.error()));
        return;
      }
      forget_node(self, id);  // durable at the owner: gone here too
      rp.deliver(atom::ok::value);
    },
    atom::remove::value, id);
  return rp;
}

void report_elsewhere(self_ptr self, const std::string& owner, uint64_t req,
                      model::health_report report, model::millis at) {
  CF_DEBUG("registry", "report of node ", report.node_id, " handed to member ", owner);
  ask_owner<coap_reply>(
    self, owner,
    [self, req](caf::expected<coap_reply> r) {
      self->send(self->state.transport, atom::health::value, req,
                 r ? std::move(*r) : error_reply(r.error()));
    },
    atom::health::value, std::move(report), at);
}

namespace {

/// Reads every node's brief and merges it; then `then`.
void read_store(self_ptr self, std::function<void()> then) {
  auto asked_at = self->state.cfg.liveness.now();
  self->request(self->state.persistence, caf::infinite, atom::load::value, atom::node::value)
    .then(
      [self, asked_at, then](loaded_state& loaded) {
        merge(self, loaded.nodes, asked_at);
        then();
      },
      [self, then](caf::error& err) {
        CF_WARN("registry", "cannot read the other members' nodes: ",
                self->system().render(err));
        then();
      });
}

}  // namespace

void refresh_from_store(self_ptr self) {
  read_store(self, [self] {
    self->delayed_send(self, self->state.cfg.refresh_every, atom::refresh::value);
  });
}

void refresh_now(self_ptr self) {
  read_store(self, [] {});
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
