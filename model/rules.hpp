// The state machines of the fleet: node liveness, a node's steps in a job,
// a job's status from its nodes, and the fleet's overall health.
#pragma once

#include <string>
#include <vector>

#include "model/types.hpp"

namespace coapfleet::model {

/// Liveness from the time since the node was last heard of:
/// online while < stale_after, stale while < offline_after, then offline.
node_status liveness(millis last_seen, millis now, millis stale_after, millis offline_after);

/// Checks an agent's report moving a node from `from` to `to`. Returns an
/// empty string when allowed, else why not. Rules:
/// - the forward chain pending → notified → downloading → downloaded →
///   installing → succeeded may skip steps but never go back;
/// - failed is reachable from every non-terminal state;
/// - repeating the current state is allowed (progress updates, retransmissions);
/// - nothing leaves a terminal state (except repeating it);
/// - agents cannot report pending, timed_out, skipped (server-only states);
///   cancelled only from a non-terminal state.
std::string check_transition(node_update_state from, node_update_state to);

job_counts count_states(const std::vector<node_job_state>& nodes);

/// Progress of a job in percent: finished nodes count 100, others their own
/// progress (or a step-based estimate), averaged over all nodes.
int job_progress(const std::vector<node_job_state>& nodes);

/// The job status that follows from the node states once a job runs:
/// in_progress while any node is not terminal; then completed if every node
/// succeeded, failed if none did, partially_failed otherwise. Created and
/// cancelled jobs keep their status.
job_status derive_job_status(job_status current, const job_counts& counts);

/// Whether a job still has work on the server's side: it runs, or it was
/// cancelled and some node has not confirmed yet (its deadline and its
/// agents' cancels go on).
bool job_unsettled(const job_record& j);

/// Fleet status: unknown with no nodes; healthy when every node is online and
/// healthy; unhealthy when no node is online and healthy; degraded otherwise.
const char* fleet_status(uint32_t total, uint32_t online_and_healthy);

}  // namespace coapfleet::model
