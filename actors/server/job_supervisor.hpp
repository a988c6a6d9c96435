// The job supervisor owns the job directory (job_id → job actor): it creates
// jobs durably, routes every job request to its actor and lists them.
#pragma once

#include <vector>

#include "actors/interfaces.hpp"
#include "actors/server/job.hpp"

namespace coapfleet::server {

struct job_supervisor_config {
  job_config job;
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
