// What the server writes to its store: plain values that cross from the
// actors to the persistence actor and its backend (model/, so that neither
// side includes the other).
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "model/audit.hpp"
#include "model/targets.hpp"
#include "model/types.hpp"

namespace coapfleet::model {

/// A registration (upsert).
struct put_node {
  node_registration reg;
  millis registered_at = 0;
  millis last_seen = 0;
  string_map operator_labels;  ///< kept beside the registration (node_traits)
};
/// The latest health of a node (telemetry: batched, at most one second late).
struct put_health {
  health_report health;
  millis at = 0;  ///< also becomes the node's last_seen
};
/// A whole job: spec, status, times, error, and node states.
struct put_job {
  job_record job;
};
/// A job's own state: status, time, error and where its campaign stands.
struct put_job_status {
  std::string job_id;
  job_status status = job_status::created;
  millis updated_at = 0;
  std::string error_message;
  campaign_state campaign;
};
struct put_node_state {
  std::string job_id;
  node_job_state state;
};
/// The job and its node states go.
struct drop_job {
  std::string job_id;
};
/// A node's labels and version inventory (an operator's labels, an agent's
/// new inventory); a node that is not registered is left alone.
struct put_node_traits {
  std::string node_id;
  string_map labels;
  string_map inventory;
  string_map operator_labels;  ///< node_traits::operator_labels
};
/// A decommissioned node: its registration and latest health go (its
/// history stays until it ages out).
struct drop_node {
  std::string node_id;
};
/// An audit record (its seq is the store's); the oldest records beyond the
/// store's keep limit go in the same transaction.
struct put_audit {
  audit_record rec;
};
/// The cluster member whose scheduler runs a job (its holder): the member
/// that creates a job holds it; others take it over through
/// store::claim_jobs.
struct put_job_holder {
  std::string job_id;
  std::string member_id;
};
using write_op = std::variant<put_node, put_health, put_job, put_job_status, put_node_state,
                              drop_job, put_audit, drop_node, put_node_traits, put_job_holder>;

/// A group of writes that must be durable together before the caller answers.
struct write_batch {
  std::vector<write_op> ops;
};

/// What the registry keeps of a node from start-up on: the few columns its
/// liveness, GET /health's counts and job targets need. The rest (the
/// registration's lists, the health report) stays in the store until the
/// node is read or its actor is started.
struct node_brief {
  std::string node_id;
  std::string ip_address;
  uint16_t port = 5683;
  millis registered_at = 0;
  millis last_seen = 0;  ///< the later of the registration's and the latest report's
  bool has_health = false;
  bool healthy = true;  ///< the latest report's overall_healthy
  std::vector<std::string> error_messages;  ///< of an unhealthy report only
  node_traits traits;  ///< labels, inventory, system_info's arch and os
};
template <class F> auto inspect(F& f, node_brief& x) {
  return f(x.node_id, x.ip_address, x.port, x.registered_at, x.last_seen, x.has_health,
           x.healthy, x.error_messages, x.traits);
}

/// Everything the server starts from, read once at start-up.
struct loaded_state {
  std::vector<node_brief> nodes;
  std::vector<job_record> jobs;
};

template <class F> auto inspect(F& f, loaded_state& x) { return f(x.nodes, x.jobs); }

}  // namespace coapfleet::model
