// The membership actor: this server as a member of a cluster (--member-id).
// It owns the member's lease in the shared store (store/members.hpp): it
// renews it every heartbeat, reads which members are live, links to them
// over CAF's middleman (TLS or plain, whichever the main set up) and
// monitors them. When its lease lapses (the store was out of reach for
// longer than the lease) it is fenced: the store refuses its writes (the
// persistence actor's fence) until it has joined again with a new epoch.
// On a server that is not clustered it only answers GET /cluster.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <caf/io/middleman_actor.hpp>

#include "actors/cluster_interface.hpp"
#include "store/members.hpp"

namespace coapfleet::server {

struct cluster_config {
  /// The member as joined by the main (its epoch and lease); an empty
  /// member_id: not clustered.
  member_row me;
  /// HOST:PORT of members to link to at start (they need not be up yet).
  std::vector<std::string> seeds;
  std::chrono::milliseconds heartbeat{1000};
  bool tls = false;
  /// The middleman that links members (caf::io's, or caf::openssl's).
  caf::io::middleman_actor middleman;
  persistence_actor persistence;
};

/// `members` is the member's own connection to the store (null when not clustered).
cluster_actor spawn_cluster(caf::actor_system& sys, cluster_config cfg,
                            std::unique_ptr<member_table> members);

/// GET /cluster's body.
std::string encode_cluster_status(const cluster_status& c);

/// "HOST:PORT" (IPv6 as [ADDR]:PORT) split; false when it is not one.
bool split_endpoint(const std::string& text, std::string& host, uint16_t& port);

}  // namespace coapfleet::server
