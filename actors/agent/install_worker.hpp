// The installer's worker: runs one package_type handler (blocking: child
// processes, file copies) away from the installer's thread, and always sends
// one result back, an exception included. The installer supervises it (see
// installer.cpp): it monitors the worker and abandons a run that outlives its
// watchdog.
#pragma once

#include <functional>
#include <string>

#include "actors/agent/handlers.hpp"
#include "actors/interfaces.hpp"

namespace coapfleet::agent {

/// What one handler run needs.
struct handler_run {
  model::update_notification note;
  handler_config cfg;
  std::string download;  ///< the verified download of a file job
};

/// Runs the handler of note.spec.package_type (blocking).
install_outcome run_handler(const handler_run& run);

/// A handler as the worker calls it (run_handler, or a test's stand-in).
using handler_fn = std::function<install_outcome(const handler_run&)>;

/// The worker's body: tells `installer` the process group of each child the
/// handler starts (atom::install, pgid; 0 once reaped), runs `fn` (an
/// exception becomes a failed outcome, result 8), sends (atom::report, ok,
/// result, message) to `installer` once, and quits.
void install_worker(caf::event_based_actor* self, installer_actor installer, handler_run run,
                    handler_fn fn);

/// Starts the worker of one run and returns it (invalid when it could not).
using worker_launcher =
  std::function<caf::actor(caf::actor_system&, installer_actor, handler_run)>;

/// The default launcher: install_worker with run_handler on a detached actor
/// (a thread of its own).
caf::actor launch_detached_worker(caf::actor_system& sys, installer_actor installer,
                                  handler_run run);

}  // namespace coapfleet::agent
