// Observers of a node's health on any member. The transport tells its
// registry when /nodes/<id>/health gets its first observer and when the
// last one leaves. Every change of a node the registry notes (a report, a
// registration, labels, inventory, liveness, a deletion: note_change) is
// then announced to the transport, which renders a fresh copy for its
// observers. In a cluster a node's reports may reach its actor through
// another member, so the member with observers asks the node's owner to
// relay the node's changes (watch), and the owner sends it (changed, id)
// for each; when ownership moves, the watch is asked of the new owner and
// the observers get a fresh copy at once. Watches are sent again at every
// view (an owner drops those of members it does not see). A node nobody
// observes costs a report nothing but an empty-map check.
#include <algorithm>

#include "actors/server/registry_internal.hpp"
#include "common/log.hpp"

namespace coapfleet::server::registry_detail {

namespace {

void tell_transport(registry_state& st, const std::string& id) {
  caf::anon_send(st.transport, atom::changed::value, resource{resource_kind::node_health, id},
                 urgency::telemetry);
}

/// The registry of the member that owns node `id`, when another member
/// does and this one has a link to it (null: served here, or no owner to ask).
registry_actor owner_registry(const registry_state& st, const std::string& id) {
  if (st.me.empty())
    return {};
  auto owner = model::owner_of(id, st.live);
  if (owner.empty() || owner == st.me)
    return {};
  auto p = st.peers.find(owner);
  return p == st.peers.end() ? registry_actor{} : p->second;
}

/// Asks the node's current owner to relay its changes here (and the one
/// asked before to stop); true when the owner changed.
bool ask_relay(self_ptr self, const std::string& id, node_watch& w) {
  auto owner = w.here ? owner_registry(self->state, id) : registry_actor{};
  if (owner == w.asked)
    return false;
  if (w.asked)
    self->send(w.asked, atom::watch::value, id, false);
  w.asked = owner;
  if (owner)
    self->send(owner, atom::watch::value, id, true);
  return true;
}

void drop_if_idle(registry_state& st, std::unordered_map<std::string, node_watch>::iterator i) {
  if (!i->second.here && !i->second.asked && i->second.members.empty())
    st.watches.erase(i);
}

}  // namespace

void relay_change(registry_state& st, const std::string& id) {
  auto i = st.watches.find(id);
  if (i == st.watches.end())
    return;
  if (i->second.here)
    tell_transport(st, id);
  for (auto& m : i->second.members)
    caf::anon_send(m, atom::changed::value, id);
}

void observe_here(self_ptr self, const std::string& id, bool on) {
  auto& st = self->state;
  if (on) {
    auto& w = st.watches[id];
    w.here = true;
    // A change the owner took between the first answer and the watch
    // reaching it is not relayed: the observers get a copy read after it
    // (asked of the owner after the watch, in order).
    if (ask_relay(self, id, w))
      tell_transport(st, id);
    return;
  }
  auto i = st.watches.find(id);
  if (i == st.watches.end())
    return;
  i->second.here = false;
  ask_relay(self, id, i->second);  // asks none now: the owner stops
  drop_if_idle(st, i);
}

void watch_from(self_ptr self, const std::string& id, bool on) {
  auto& st = self->state;
  auto from = caf::actor_cast<registry_actor>(self->current_sender());
  if (!from)
    return;
  if (on) {
    auto& members = st.watches[id].members;
    if (std::find(members.begin(), members.end(), from) == members.end())
      members.push_back(std::move(from));
    CF_DEBUG("registry", "node ", id, "'s changes relayed to another member (", members.size(),
             " in all)");
    return;
  }
  auto i = st.watches.find(id);
  if (i == st.watches.end())
    return;
  auto& members = i->second.members;
  members.erase(std::remove(members.begin(), members.end(), from), members.end());
  drop_if_idle(st, i);
}

void changed_elsewhere(self_ptr self, const std::string& id) {
  auto& st = self->state;
  auto i = st.watches.find(id);
  if (i != st.watches.end() && i->second.here)
    tell_transport(st, id);
}

void retarget_watches(self_ptr self) {
  auto& st = self->state;
  if (st.watches.empty())
    return;
  std::vector<registry_actor> linked;
  for (auto& [member, r] : st.peers)
    linked.push_back(r);
  auto gone = [&linked](const registry_actor& r) {
    return std::find(linked.begin(), linked.end(), r) == linked.end();
  };
  for (auto i = st.watches.begin(); i != st.watches.end();) {
    auto& w = i->second;
    w.members.erase(std::remove_if(w.members.begin(), w.members.end(), gone), w.members.end());
    bool moved = false;
    if (w.asked && gone(w.asked)) {
      w.asked = registry_actor{};  // its member went away: nothing to tell it
      moved = true;
    }
    // A new owner (or this member now): a fresh copy for the observers,
    // which may have missed what happened while the node moved.
    moved = ask_relay(self, i->first, w) || moved;
    if (moved && w.here)
      tell_transport(st, i->first);
    else if (w.asked)
      self->send(w.asked, atom::watch::value, i->first, true);  // again: the owner may
          // have dropped it (it saw this member gone for a moment); taken once there
    if (!w.here && !w.asked && w.members.empty())
      i = st.watches.erase(i);
    else
      ++i;
  }
}

}  // namespace coapfleet::server::registry_detail
