// A job actor owns one update job: its targets, every node's state in it,
// the job's status and its deadline. It notifies agents through the transport.
// Commit, then change: it answers and publishes a change once it is durable.
#pragma once

#include <chrono>

#include "actors/interfaces.hpp"

namespace coapfleet::server {

struct job_config {
  /// Nodes that have not finished this long after the trigger are timed_out
  /// (a job's own timeout_seconds overrides it).
  std::chrono::seconds default_timeout{std::chrono::hours(1)};
  /// Nodes offline at trigger time are skipped instead of notified.
  bool skip_offline = true;
};

/// `supervisor` (if any) hears of every change of the job.
job_actor spawn_job(caf::actor_system& sys, model::job_record record, job_config cfg,
                    registry_actor registry, persistence_actor persistence,
                    transport_actor transport, job_supervisor_actor supervisor = {});

}  // namespace coapfleet::server
