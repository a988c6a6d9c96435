// What the server writes to its store: plain values that cross from the
// actors to the persistence actor and its backend (model/, so that neither
// side includes the other).
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "model/audit.hpp"
#include "model/types.hpp"

namespace coapfleet::model {

/// A registration (upsert).
struct put_node {
  node_registration reg;
  millis registered_at = 0;
  millis last_seen = 0;
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
struct put_job_status {
  std::string job_id;
  job_status status = job_status::created;
  millis updated_at = 0;
  std::string error_message;
};
struct put_node_state {
  std::string job_id;
  node_job_state state;
};
/// The job and its node states go.
struct drop_job {
  std::string job_id;
};
/// An audit record (its seq is the store's); the oldest records beyond the
/// store's keep limit go in the same transaction.
struct put_audit {
  audit_record rec;
};
using write_op = std::variant<put_node, put_health, put_job, put_job_status, put_node_state,
                              drop_job, put_audit>;

/// A group of writes that must be durable together before the caller answers.
struct write_batch {
  std::vector<write_op> ops;
};

/// Everything the store holds, read once at start-up.
struct loaded_state {
  std::vector<node_record> nodes;
  std::vector<job_record> jobs;
};

template <class F> auto inspect(F& f, loaded_state& x) { return f(x.nodes, x.jobs); }

}  // namespace coapfleet::model
