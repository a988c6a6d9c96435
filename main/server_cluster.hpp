// The server's cluster options (--member-id, --cluster-listen,
// --cluster-seed, --cluster-cert/key/ca, --lease-ms) and the start of its
// membership: the middleman modules, the first join in the store (before
// anything is written), the membership actor published for the others.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <caf/all.hpp>

#include "actors/cluster_interface.hpp"
#include "store/members.hpp"
#include "store/store.hpp"

namespace coapfleet::server {

struct cluster_options {
  std::string member_id;  ///< empty: not clustered
  std::string listen;     ///< HOST:PORT of this member's middleman
  std::string seeds;      ///< HOST:PORT[,HOST:PORT...]
  std::string cert, key, ca;
  int64_t lease_ms = 4000;
  bool clustered() const { return !member_id.empty(); }
  bool tls() const { return !cert.empty(); }
};

void add_cluster_options(CLI::App& app, cluster_options& opt);

/// What is wrong with the options (for a store at `store_location`), or "".
std::string check_cluster_options(const cluster_options& opt, const std::string& store_location);

/// Loads CAF's middleman (and its OpenSSL module for TLS) into the config.
void configure_cluster(caf::actor_system_config& cfg, const cluster_options& opt);

/// Why this member cannot listen on --cluster-listen (a socket already
/// listens there), or "": checked before it joins, so that a member that
/// could never be linked to does not take a share of the nodes.
std::string cluster_listen_refusal(const cluster_options& opt);

/// Joins the cluster in the store (a new epoch) and fences `db` with it.
/// Null with `error` on failure.
std::unique_ptr<member_table> join_cluster(const cluster_options& opt,
                                           const std::string& store_location,
                                           const std::string& coap_endpoint, store& db,
                                           member_row& me, std::string& error);

/// Spawns the membership actor (for a server on its own too: it answers
/// GET /cluster) and, when clustered, publishes it on --cluster-listen.
cluster_actor start_cluster(caf::actor_system& sys, const cluster_options& opt, member_row me,
                            std::unique_ptr<member_table> table, persistence_actor persistence,
                            std::string& error);

/// The first step of a stop: the other members can no longer reach the
/// membership actor (it is unpublished).
void unpublish_cluster(caf::actor_system& sys, const cluster_options& opt,
                       const cluster_actor& handle);

/// The last step of a stop, once the membership actor was told to exit and
/// every other handle to it is dropped: waits (at most `bound`) until its
/// object is destroyed, while the middleman still runs. It runs on a thread
/// of its own (detached), which the actor system's end waits for; CAF 0.17's
/// network broker, stopped first, can keep the last reference to it for good
/// (the "I ended" message it sends the broker stays in the stopped broker's
/// mailbox). False if it was not destroyed in time.
bool await_cluster_end(cluster_actor handle, std::chrono::milliseconds bound);

}  // namespace coapfleet::server
