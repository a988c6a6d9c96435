// The system actor answers GET /system and POST /system; it decides whether
// restart/shutdown are allowed (the transport carries them out after the 2.04).
#pragma once

#include "actors/interfaces.hpp"

namespace coapfleet::server {

struct system_config {
  bool allow_actions = true;  ///< restart and shutdown over CoAP
  model::millis started_at = 0;
};

system_actor spawn_system(caf::actor_system& sys, system_config cfg,
                          persistence_actor persistence, registry_actor registry,
                          job_supervisor_actor jobs);

}  // namespace coapfleet::server
