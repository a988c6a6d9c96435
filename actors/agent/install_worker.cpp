#include "actors/agent/install_worker.hpp"

#include <exception>

namespace coapfleet::agent {

install_outcome run_handler(const handler_run& run) {
  auto& spec = run.note.spec;
  if (spec.package_type == "pip")
    return install_pip(spec, run.cfg);
  if (spec.package_type == "apt")
    return install_apt(spec, run.cfg);
  if (spec.package_type == "script")
    return run_script(spec, run.cfg);
  if (spec.package_type == "file")
    return install_file(spec, run.download, spec.artifact_sha256, run.cfg);
  return install_outcome{false,
                         static_cast<int32_t>(model::update_result::unsupported_package_type),
                         "unsupported package_type " + spec.package_type};
}

void install_worker(caf::event_based_actor* self, installer_actor installer, handler_run run,
                    handler_fn fn) {
  run.cfg.on_child = [self, installer](int pgid) {
    self->send(installer, atom::install::value, static_cast<int32_t>(pgid));
  };
  install_outcome out;
  auto failed = [&](const std::string& why) {
    out = install_outcome{false, static_cast<int32_t>(model::update_result::update_failed),
                          "the " + run.note.spec.package_type + " handler failed: " + why};
  };
  try {
    out = fn(run);
  } catch (const std::exception& e) {
    failed(e.what());
  } catch (...) {
    failed("unknown exception");
  }
  self->send(installer, atom::report::value, out.ok, out.result, out.error_message);
  self->quit();
}

caf::actor launch_detached_worker(caf::actor_system& sys, installer_actor installer,
                                  handler_run run) {
  return sys.spawn<caf::detached>(install_worker, std::move(installer), std::move(run),
                                  handler_fn{run_handler});
}

}  // namespace coapfleet::agent
