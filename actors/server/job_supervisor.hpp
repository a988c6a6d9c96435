// The job supervisor owns the job directory (job_id → job actor): it creates
// jobs durably, routes every job request to its actor and lists them. It
// monitors the job actors and restarts a dead one from the store.
#pragma once

#include <functional>

#include <chrono>
#include <vector>

#include "common/clock.hpp"
#include "actors/interfaces.hpp"
#include "actors/server/job.hpp"

namespace coapfleet::server {

struct job_supervisor_config {
  job_config job;
  /// This server's member id in a cluster ("": not clustered): it runs no
  /// job until the membership actor has told it the live members.
  std::string member_id;
  /// A job actor that dies is restarted at most this often within
  /// `restart_window`; after that it stays down (its requests answer 5.00).
  uint32_t max_restarts = 3;
  std::chrono::milliseconds restart_window{std::chrono::minutes(1)};
  /// Where "now" comes from for the restart window (tests replace it).
  std::function<model::millis()> now = now_millis;
  /// /updates/changes lists at most this many changed jobs per copy; when
  /// more changed, the copy says "reset" (read GET /updates again) instead.
  size_t max_changes = 1000;
};

/// Spawns the supervisor with the jobs loaded from the store; in-progress
/// jobs resume (nodes never reached are notified again).
job_supervisor_actor spawn_job_supervisor(caf::actor_system& sys, job_supervisor_config cfg,
                                          std::vector<model::job_record> jobs,
                                          registry_actor registry,
                                          persistence_actor persistence,
                                          transport_actor transport,
                                          artifact_store_actor artifacts);

}  // namespace coapfleet::server
