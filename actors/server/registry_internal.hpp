// Internal to the registry (registry.cpp: directory, supervision, requests;
// registry_liveness.cpp: liveness deadlines, counts, announcements).
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "actors/server/member_calls.hpp"
#include "actors/server/registry.hpp"
#include "model/ownership.hpp"

namespace coapfleet::server::registry_detail {

// A node's actor is virtual: it exists while the node is active.
//
//   quiet ──report / re-registration / read──► active (actor started, route sent)
//   active ──quiet for idle_after──► closing (the transport is asked to unroute)
//   closing ──transport: unrouted──► quiet (the actor gets close, after every
//                                     report the transport routed to it)
//   closing ──report──► active (routed again; the transport's unroute is moot)
//
// Supervision (the registry monitors active actors, not linked): one that
// dies is started again at once and routed again; more than max_restarts
// within restart_window and the node stays down: its requests answer 5.00
// naming it, its reports are refused. Its state is the store's: what the
// registry committed and what the persistence actor took.

struct node_entry {
  node_actor actor;  ///< null while the node is quiet
  node_summary summary;  ///< the latest (status: the registry's liveness of it)
  std::string ip_address;
  uint16_t port = 5683;
  bool closing = false;  ///< unroute asked of the transport, not yet confirmed
  model::millis registered_at = 0;
  /// The deadline bucket it waits in (0: none; an offline, quiet node waits for nothing).
  model::millis due = 0;
  /// Labels, inventory, arch and os (null: none). Shared among the nodes
  /// that have the same (a fleet has few distinct ones): 16 bytes a node.
  std::shared_ptr<const model::node_traits> traits;
};

/// Restart bookkeeping of a node whose actor died (few, so apart from node_entry).
struct node_restarts {
  bool down = false;                 ///< restarted too often: stays down
  std::vector<model::millis> times;  ///< of recent restarts
};

/// Hashed: a lookup touches a bucket and a node, not the ~20 scattered tree
/// nodes of a million-entry std::map (their cache misses made registration
/// into a grown fleet half as fast). Keys never move (node_of points at them).
using node_map = std::unordered_map<std::string, node_entry>;

/// GET /health's counts, kept as summaries change (not recounted per read).
struct fleet_tally {
  uint32_t online = 0, stale = 0, offline = 0;
  uint32_t healthy = 0, unhealthy = 0, online_healthy = 0;
  std::set<std::string> unhealthy_ids;  ///< sorted, as GET /health lists them

  void count(const node_summary& s, int sign) {
    auto add = [sign](uint32_t& n) { n = static_cast<uint32_t>(static_cast<int64_t>(n) + sign); };
    switch (s.status) {
      case model::node_status::online: add(online); break;
      case model::node_status::stale: add(stale); break;
      case model::node_status::offline: add(offline); break;
    }
    if (s.has_health && s.healthy)
      add(healthy);
    if (s.has_health && !s.healthy) {
      add(unhealthy);
      if (sign > 0)
        unhealthy_ids.insert(s.node_id);
      else
        unhealthy_ids.erase(s.node_id);
    }
    if (s.status == model::node_status::online && s.healthy)
      add(online_healthy);
  }
};

/// Observers of a node's health (registry_watch.cpp): on this member's
/// transport, and on other members' (whose registries this member relays
/// the node's changes to while it owns the node).
struct node_watch {
  bool here = false;      ///< /nodes/<id>/health has observers on this member
  registry_actor asked;   ///< the owner's registry asked to relay to this one (null: none)
  std::vector<registry_actor> members;  ///< other members' registries observing it
};

struct registry_state {
  static inline const char* name = "registry";
  registry_config cfg;
  node_map nodes;
  fleet_tally tally;  ///< of every node's summary
  /// Active node actor → its node id (a key of `nodes`).
  std::unordered_map<caf::actor_id, const std::string*> node_of;
  std::unordered_map<std::string, node_restarts> restarts;
  persistence_actor persistence;
  transport_actor transport;
  /// Hears of nodes that register or come back online (the job supervisor).
  caf::actor joiners;
  /// A telemetry change of /health was announced to the transport and that
  /// view was not rendered since: later changes need no announcement of
  /// their own (one per rendering, not one per report).
  bool health_announced = false;
  /// GET /nodes is read from the database (the reader): its telemetry
  /// changes are announced at most every `nodes_every` (then once more when
  /// there were more), not once per report.
  bool nodes_timer = false;
  bool nodes_dirty = false;
  static constexpr std::chrono::milliseconds nodes_every{250};
  size_t active = 0;  ///< node actors started and not closed
  /// /nodes/changes: the nodes changed since its last copy (registered,
  /// reported, re-registered, changed liveness), at most cfg.max_changes
  /// (then `changes_reset`: the copy tells its readers to read the listing
  /// again).
  std::unordered_set<std::string> changed;
  bool changes_reset = false;
  uint64_t changes_seq = 0;  ///< the number of the last copy
  /// Node actors closed since the heap was last trimmed, and whether a trim
  /// is scheduled (see atom::trim).
  size_t closed_since_trim = 0;
  bool trim_timer = false;
  model::millis last_close = 0;
  static constexpr size_t trim_after_closes = 1000;
  static constexpr std::chrono::seconds trim_delay{2};
  /// Liveness: the nodes whose status changes (or whose actor is closed)
  /// next, by the 100 ms bucket it happens in. One timer for the fleet, armed for the earliest
  /// bucket; a node is in one bucket at most (a report does not move it:
  /// when its bucket comes, it is put where its new deadline is).
  std::map<model::millis, std::vector<std::string>> deadlines;
  model::millis armed_for = 0;  ///< the bucket the pending timer is for (0: none)
  /// The distinct traits of the fleet, by their encoding (registry_targets.cpp).
  std::unordered_map<std::string, std::shared_ptr<const model::node_traits>> trait_pool;
  /// The pool's slots used last: a fleet's few distinct traits are found
  /// by comparison, without encoding a key (a start-up reads a million).
  std::array<const std::shared_ptr<const model::node_traits>*, 4> recent_traits{};
  size_t recent_next = 0;
  /// Cluster (registry_cluster.cpp): the node's owner is the live member
  /// rendezvous hashing picks (model::owner_of over `live`). Until the
  /// first view (and without a cluster) every node is served here.
  std::string me;                 ///< this member ("": every node is served here)
  /// The members nodes are owned among: the live ones with a link, sorted;
  /// `me` is left out while fenced.
  std::vector<std::string> live;
  std::map<std::string, registry_actor> peers;  ///< the other live members' registries
  member_calls remote_calls;      ///< requests handed to them, not yet answered
  /// Nodes whose health is observed here or on another member (few: an
  /// entry per observed node, bounded by the transports' observation limits).
  std::unordered_map<std::string, node_watch> watches;

  registry_state() = default;
  registry_state(const registry_state&) = delete;
  registry_state& operator=(const registry_state&) = delete;
  /// Node actors end with the registry, however it ends.
  ~registry_state() {
    for (auto& kv : nodes)
      if (kv.second.actor)
        caf::anon_send_exit(kv.second.actor, caf::exit_reason::user_shutdown);
  }
};

using self_ptr = registry_actor::stateful_pointer<registry_state>;

/// Notes that node `id` changed (for the next copy of /nodes/changes).
void note_change(registry_state& st, const std::string& id);
/// Replaces a node's summary, keeping the counts; true when what GET /health
/// shows of the node changed.
bool set_summary(registry_state& st, node_entry& e, node_summary&& s);
/// Puts node `id` in the bucket of its next liveness change or actor close
/// (none once offline and quiet).
void schedule(self_ptr self, const std::string& id, node_entry& e);
/// Adds a node from its brief (quiet: no actor), with its liveness scheduled.
void add_node(self_ptr self, const model::node_brief& b);
/// Adds a node just registered (durable), heard of at `now`.
void add_registered(self_ptr self, const model::node_registration& reg,
                    model::millis registered_at, model::millis now, model::node_traits traits);
/// A deleted node (durable): its actor is closed, its entry and counts go.
void forget_node(self_ptr self, const std::string& id);
/// Starts closing a quiet node's actor (registry.cpp).
void begin_close(self_ptr self, const std::string& id, node_entry& e);
/// The liveness deadlines that are due: statuses, counts, announcements.
void liveness_due(self_ptr self);
void announce(self_ptr self, resource_kind kind, urgency u);
/// Tells the job supervisor that node `id` registered or came back online.
void joined(self_ptr self, const std::string& id, const node_entry& e);
/// A node's new summary (telemetry: a report, not an acknowledged change).
void take_summary(self_ptr self, node_summary&& s, bool telemetry);

// registry_watch.cpp: observers of a node's health, on any member.

/// Node `id` changed (note_change): its observers here and the members
/// that observe it hear of it. Nothing when no node is observed.
void relay_change(registry_state& st, const std::string& id);
/// The transport's observers of node `id`'s health came (true) or left.
void observe_here(self_ptr self, const std::string& id, bool on);
/// Another member's registry observes node `id` (true) or no longer.
void watch_from(self_ptr self, const std::string& id, bool on);
/// The owner's registry relays a change of node `id`.
void changed_elsewhere(self_ptr self, const std::string& id);
/// At every view: watches of members gone are dropped, and relays are
/// asked of the nodes' current owners (observers here get a fresh copy
/// when a node's owner changed).
void retarget_watches(self_ptr self);

// registry_cluster.cpp: a cluster member's view of the nodes other members serve.

/// The member that owns node `id` when it is not this one ("": served
/// here: not clustered, owned here, or asked by another member, whose
/// requests are never handed on).
std::string owner_elsewhere(self_ptr self, const std::string& id);
/// Hands a request to the registry of member `owner`; `done` gets its
/// answer, or an error (5.03, retry: no link to the member, it went away
/// or did not answer in time).
template <class T>
using owner_done = std::function<void(caf::expected<T>)>;
/// The error for a member that cannot be asked (no link) or did not answer.
caf::error owner_unavailable(const std::string& owner, const caf::error& why = {});
template <class T, class... Ts>
void ask_owner(self_ptr self, const std::string& owner, owner_done<T> done, Ts&&... xs) {
  auto& st = self->state;
  auto p = st.peers.find(owner);
  if (p == st.peers.end())
    return done(caf::expected<T>{owner_unavailable(owner)});
  auto shared = std::make_shared<owner_done<T>>(std::move(done));
  auto call = st.remote_calls.add(owner, [shared](caf::error err) {
    (*shared)(caf::expected<T>{std::move(err)});
  });
  self->request(p->second, std::chrono::seconds(10), std::forward<Ts>(xs)...)
    .then(
      [self, call, shared](T& x) {
        if (self->state.remote_calls.finish(call))
          (*shared)(caf::expected<T>{std::move(x)});
      },
      [self, call, shared, owner](caf::error& err) {
        if (self->state.remote_calls.finish(call))
          (*shared)(caf::expected<T>{err.category() == api_category
                                       ? std::move(err)
                                       : owner_unavailable(owner, err)});
      });
}
/// The same as the answer to a request of this registry.
template <class T, class... Ts>
caf::result<T> owner_answers(self_ptr self, const std::string& owner, Ts&&... xs) {
  auto rp = self->make_response_promise<T>();
  ask_owner<T>(
    self, owner,
    [rp](caf::expected<T> r) mutable {
      if (r)
        rp.deliver(std::move(*r));
      else
        rp.deliver(std::move(r.error()));
    },
    std::forward<Ts>(xs)...);
  return rp;
}
/// A new view of the cluster (every heartbeat): owners are computed anew
/// among the live members with a link; the actors of nodes another member
/// owns are closed (their reports go there); after a change the store is
/// read at once.
void take_view(self_ptr self, cluster_view v);
/// Whether another member owns node `id` (this member's view).
bool owned_elsewhere(const registry_state& st, const std::string& id);
/// Reads the store's nodes now (besides the refresh every refresh_every).
void refresh_now(self_ptr self);
/// A registration of a node `owner` owns, handed there; once it is
/// durable, this member's directory has it too.
caf::result<registered> enroll_elsewhere(self_ptr self, const std::string& owner,
                                         model::node_registration reg, const peer& from);
/// A deletion of a node `owner` owns, handed there; once it is durable the
/// node goes here too.
caf::result<atom::ok> remove_elsewhere(self_ptr self, const std::string& owner,
                                       const std::string& id);
/// A report (request `req` of the transport) of a node `owner` owns: its
/// answer goes to the transport.
void report_elsewhere(self_ptr self, const std::string& owner, uint64_t req,
                      model::health_report report, model::millis at);

/// Cluster: merges the store's nodes (their registrations, last contact and
/// health as the other members wrote them) into the directory, except the
/// nodes this member serves (their actors know better); nodes deleted
/// through another member go. Every cfg.refresh_every, and before job
/// targets are resolved.
void refresh_from_store(self_ptr self);
/// Cluster: runs `then` (a resolve) once the directory has the store's
/// nodes; not clustered: at once.
caf::result<std::vector<job_target>> with_store_nodes_impl(
  self_ptr self, std::function<caf::result<std::vector<job_target>>()> then);
template <class T, class F>
caf::result<T> with_store_nodes(self_ptr self, F then) {
  return with_store_nodes_impl(self, std::move(then));
}

// registry_targets.cpp: traits, labels, inventory, resolving job targets.

/// Sets a node's traits (shared through the pool; empty ones are null).
void set_traits(registry_state& st, node_entry& e, model::node_traits t);
/// A node's traits (empty when it has none).
const model::node_traits& traits_of(const node_entry& e);
/// What a registration makes of a node's traits: its labels merged over the
/// ones it had, its inventory when it sent one; arch and os from system_info.
/// `reg` gets the merged labels and the kept inventory (what is stored).
model::node_traits registered_traits(model::node_registration& reg, const node_entry* had);
/// Job targets for ids (["all"]: every node); unknown ids are not_found
/// naming them, or left out with `known_only`.
caf::result<std::vector<job_target>> resolve_ids(self_ptr self,
                                                 const std::vector<std::string>& ids,
                                                 bool known_only);
/// Job targets of a spec (target_nodes and target_labels).
caf::result<std::vector<job_target>> resolve_spec(self_ptr self, const model::job_spec& spec);
/// An operator's label change (durable before the answer).
caf::result<model::string_map> relabel(self_ptr self, const std::string& id,
                                       const model::string_map& change);
/// An agent's inventory (durable before the answer).
caf::result<atom::ok> take_inventory(self_ptr self, const std::string& id,
                                     model::string_map inventory);

}  // namespace coapfleet::server::registry_detail
