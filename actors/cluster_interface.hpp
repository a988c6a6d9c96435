// The cluster's contract: what members tell each other over CAF's
// middleman (every type here is serializable; nothing unsafe crosses a
// member) and what the local actors ask the membership actor. Its types
// have a type ID block of their own, after the main one.
//
//   member A's cluster actor ◄──(join)──► member B's cluster actor
//        │  leases, epochs: the shared store (store/members.hpp)
//        └──(fence)──► persistence: commits only while the lease holds
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "actors/interfaces.hpp"

namespace coapfleet {

/// A member as one member sees it: its row in the store (the lease) and
/// whether there is a middleman link to it.
struct member_view {
  std::string member_id;
  std::string cluster_endpoint;  ///< HOST:PORT of its middleman
  std::string coap_endpoint;     ///< HOST:PORT of its CoAP socket
  uint64_t epoch = 0;            ///< its fencing token (a new one per join)
  int64_t lease_ms = 0;
  model::millis started_at = 0;
  int64_t heartbeat_age_ms = 0;  ///< by the store's clock
  bool live = false;             ///< its lease holds
  bool linked = false;           ///< a middleman link is up (itself: true)
  bool self = false;
  caf::actor jobs;  ///< its job supervisor (requests for the jobs it runs go there)
  caf::actor registry;  ///< its registry (requests for the nodes it owns go there)
  uint32_t nodes = 0;     ///< nodes it serves (their actors are active there)
  uint32_t jobs_run = 0;  ///< jobs it runs
};
template <class F> auto inspect(F& f, member_view& x) {
  return f(x.member_id, x.cluster_endpoint, x.coap_endpoint, x.epoch, x.lease_ms, x.started_at,
           x.heartbeat_age_ms, x.live, x.linked, x.self, x.jobs, x.registry, x.nodes,
           x.jobs_run);
}

/// GET /cluster: this member and the others.
struct cluster_status {
  bool clustered = false;   ///< false: one server on its own (no --member-id)
  std::string member_id;
  uint64_t epoch = 0;
  /// "active": its lease holds; "fenced": it lapsed (the member writes and
  /// acts on nothing until it has joined again); "single": not clustered.
  std::string state = "single";
  bool tls = false;  ///< the links between members use TLS
  std::vector<member_view> members;
};
template <class F> auto inspect(F& f, cluster_status& x) {
  return f(x.clustered, x.member_id, x.epoch, x.state, x.tls, x.members);
}

}  // namespace coapfleet

CAF_BEGIN_TYPE_ID_BLOCK(coapfleet_cluster, caf::id_block::coapfleet::end)
  CAF_ADD_TYPE_ID(coapfleet_cluster, (coapfleet::member_view))
  CAF_ADD_TYPE_ID(coapfleet_cluster, (std::vector<coapfleet::member_view>))
  CAF_ADD_TYPE_ID(coapfleet_cluster, (coapfleet::cluster_status))
CAF_END_TYPE_ID_BLOCK(coapfleet_cluster)

namespace coapfleet {

/// The membership actor (actors/server/cluster.hpp), one per server. It
/// keeps its member's lease in the store, links to the live members over
/// the middleman (monitoring them), and answers GET /cluster.
using cluster_actor = caf::typed_actor<
  /// Another member introduces itself after connecting: answered with the
  /// members this one knows (itself included).
  caf::replies_to<atom::join, member_view>::with<std::vector<member_view>>,
  /// The cluster as this member sees it.
  caf::replies_to<atom::get>::with<cluster_status>,
  /// Internal: renew the lease, read the members, link to new ones.
  caf::reacts_to<atom::tick>,
  /// The member's job supervisor and registry: the supervisor is told the
  /// live members every heartbeat (cluster_view) and introduced to the
  /// other members; both are asked how much they serve (GET /cluster).
  caf::reacts_to<atom::observe, caf::actor, caf::actor>>;

}  // namespace coapfleet
