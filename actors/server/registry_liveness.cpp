// The registry's liveness (one deadline structure for the fleet, not a timer
// per node), its maintained counts and its announcements of changes.
#include <algorithm>

#include "actors/server/registry_internal.hpp"
#include "common/log.hpp"
#include "model/json.hpp"
#include "model/rules.hpp"

namespace coapfleet::server::registry_detail {

namespace {

/// Deadlines are kept to this granularity: GET /health's counts follow a
/// node's liveness within it (GET /nodes and job targets compute it exactly).
constexpr model::millis bucket_ms = 100;

/// Arms the fleet's one liveness timer for the earliest bucket.
void arm_deadline(self_ptr self) {
  auto& st = self->state;
  if (st.deadlines.empty())
    return;
  auto first = st.deadlines.begin()->first;
  if (st.armed_for != 0 && st.armed_for <= first)
    return;  // a timer for that bucket (or an earlier one) is pending
  st.armed_for = first;
  auto delay = std::max<model::millis>(first - st.cfg.liveness.now(), 1);
  self->delayed_send(self, std::chrono::milliseconds(delay), atom::deadline::value);
}

/// The node's liveness as of now, into its summary; true when it changed.
bool update_status(registry_state& st, node_entry& e, model::millis now) {
  auto status = model::liveness(e.summary.last_seen, now, st.cfg.liveness.stale_after.count(),
                                st.cfg.liveness.offline_after.count());
  if (status == e.summary.status)
    return false;
  auto s = e.summary;
  s.status = status;
  set_summary(st, e, std::move(s));
  return true;
}

/// A telemetry change of GET /nodes: announced now, or (within
/// nodes_every of the last announcement) when that time is up.
void take_nodes_change(self_ptr self) {
  auto& st = self->state;
  if (st.nodes_timer) {
    st.nodes_dirty = true;
    return;
  }
  announce(self, resource_kind::nodes, urgency::telemetry);
  st.nodes_timer = true;
  self->delayed_send(self, registry_state::nodes_every, atom::tick::value);
}

}  // namespace

void note_change(registry_state& st, const std::string& id) {
  if (!st.watches.empty())
    relay_change(st, id);
  if (st.changes_reset)
    return;
  // One lookup while there is room; at the limit, a new id means more
  // changed than a copy lists.
  if (st.changed.size() < st.cfg.max_changes || st.changed.count(id)) {
    st.changed.insert(id);
    return;
  }
  st.changed.clear();
  st.changes_reset = true;
}

/// Replaces a node's summary, keeping the tally; true when what GET /health
/// shows of the node changed.
bool set_summary(registry_state& st, node_entry& e, node_summary&& s) {
  auto& old = e.summary;
  bool counted = !old.node_id.empty();
  bool changed = !counted || old.status != s.status || old.healthy != s.healthy
                 || old.has_health != s.has_health || old.error_messages != s.error_messages;
  note_change(st, s.node_id);
  if (counted)
    st.tally.count(old, -1);
  old = std::move(s);
  st.tally.count(old, +1);
  return changed;
}

/// Puts node `id` in the bucket of its next liveness change or actor close
/// (none once offline and quiet).
void schedule(self_ptr self, const std::string& id, node_entry& e) {
  auto& st = self->state;
  auto& s = e.summary;
  auto& cfg = st.cfg.liveness;
  model::millis due = 0;
  if (s.status != model::node_status::offline) {
    auto after = s.status == model::node_status::online ? cfg.stale_after : cfg.offline_after;
    due = s.last_seen + static_cast<model::millis>(after.count());
  }
  if (e.actor && !e.closing) {
    auto idle = s.last_seen + static_cast<model::millis>(cfg.idle_after.count());
    due = due == 0 ? idle : std::min(due, idle);
  }
  if (due == 0)
    return;
  auto bucket = (due + bucket_ms - 1) / bucket_ms * bucket_ms;
  if (e.due != 0 && e.due <= bucket)
    return;  // it waits in an earlier bucket, and moves on from there
  e.due = bucket;
  st.deadlines[bucket].push_back(id);
  arm_deadline(self);
}

void joined(self_ptr self, const std::string& id, const node_entry& e) {
  auto& st = self->state;
  if (st.joiners)
    caf::anon_send(st.joiners, atom::enroll::value,
                   job_target{id, e.ip_address, e.port, e.summary.status, traits_of(e)});
}

void announce(self_ptr self, resource_kind kind, urgency u) {
  self->send(self->state.transport, atom::changed::value, resource{kind, {}}, u);
}

/// A node's new summary. Telemetry changes are announced to the transport
/// once per rendering of the view they change.
void take_summary(self_ptr self, node_summary&& s, bool telemetry) {
  auto& st = self->state;
  auto i = st.nodes.find(s.node_id);
  if (i == st.nodes.end())
    return;
  auto& cur = i->second.summary;
  // Health older than what the registry has (from an actor closed with
  // reports still queued, handed over after its successor's newer one): kept.
  if (s.health_at < cur.health_at) {
    s.has_health = cur.has_health;
    s.healthy = cur.healthy;
    s.error_messages = cur.error_messages;
    s.health_at = cur.health_at;
  }
  // Liveness is the registry's: the node says when it was heard from.
  s.last_seen = std::max(s.last_seen, cur.last_seen);
  s.status = model::liveness(s.last_seen, st.cfg.liveness.now(),
                             st.cfg.liveness.stale_after.count(),
                             st.cfg.liveness.offline_after.count());
  bool back_online = cur.status == model::node_status::offline
                     && s.status != model::node_status::offline;
  bool health_changed = set_summary(st, i->second, std::move(s));
  schedule(self, i->first, i->second);
  if (back_online)
    joined(self, i->first, i->second);
  if (!telemetry)
    return;
  if (health_changed && !st.health_announced) {
    st.health_announced = true;
    announce(self, resource_kind::health, urgency::telemetry);
  }
  take_nodes_change(self);
}

void liveness_due(self_ptr self) {
  auto& st = self->state;
  st.armed_for = 0;
  auto now = st.cfg.liveness.now();
  bool changed = false;
  while (!st.deadlines.empty() && st.deadlines.begin()->first <= now) {
    auto bucket = st.deadlines.begin()->first;
    auto ids = std::move(st.deadlines.begin()->second);
    st.deadlines.erase(st.deadlines.begin());
    for (auto& id : ids) {
      auto i = st.nodes.find(id);
      if (i == st.nodes.end() || i->second.due != bucket)
        continue;
      auto& e = i->second;
      e.due = 0;
      if (e.actor && !e.closing
          && now - e.summary.last_seen >= st.cfg.liveness.idle_after.count())
        begin_close(self, id, e);
      if (update_status(st, e, now)) {
        changed = true;
        CF_DEBUG("registry", "node ", id, " is ", to_string(i->second.summary.status),
                 " (last seen ", model::format_time(i->second.summary.last_seen), ")");
      }
      schedule(self, id, i->second);
    }
  }
  if (changed) {
    if (!st.health_announced) {
      st.health_announced = true;
      announce(self, resource_kind::health, urgency::telemetry);
    }
    take_nodes_change(self);
  }
  arm_deadline(self);
}

}  // namespace coapfleet::server::registry_detail
