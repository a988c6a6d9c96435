#include "actors/agent/install_worker.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>

#include <unistd.h>

namespace coapfleet::agent {

namespace {

install_outcome install_with(const handler_run& run) {
  auto& spec = run.note.spec;
  if (spec.package_type == "pip")
    return install_pip(spec, run.cfg);
  if (spec.package_type == "apt")
    return install_apt(spec, run.cfg);
  if (spec.package_type == "script")
    return run_script(spec, run.cfg);
  if (spec.package_type == "file")
    return install_file(spec, run.download, spec.artifact_sha256, run.cfg);
  install_outcome out;
  out.result = static_cast<int32_t>(model::update_result::unsupported_package_type);
  out.error_message = "unsupported package_type " + spec.package_type;
  return out;
}

}  // namespace

install_outcome run_handler(const handler_run& run) {
  auto& spec = run.note.spec;
  auto out = install_with(run);
  if (!out.ok || spec.health_check.empty())
    return out;
  // The health check runs like a script job (sh -c, in the state
  // directory, within the job's timeout, in a process group of its own).
  auto check = spec;
  check.script = spec.health_check;
  auto hc = run_script(check, run.cfg);
  if (hc.ok) {
    if (out.had_previous)
      ::unlink(out.previous_path.c_str());
    return out;
  }
  install_outcome bad;
  bad.result = static_cast<int32_t>(model::update_result::update_failed);
  bad.error_message = "health check failed: " + hc.error_message;
  if (spec.package_type != "file") {
    bad.error_message += " (a " + spec.package_type + " job has no rollback)";
    return bad;
  }
  bool restored = out.had_previous
                    ? ::rename(out.previous_path.c_str(), out.installed_path.c_str()) == 0
                    : ::unlink(out.installed_path.c_str()) == 0 || errno == ENOENT;
  if (!restored) {
    bad.error_message += "; the rollback failed: " + std::string(std::strerror(errno));
    return bad;
  }
  bad.rolled_back = true;
  bad.error_message += out.had_previous ? "; the previous " + out.installed_path + " is back"
                                        : "; " + out.installed_path
                                            + " was removed (there was none before)";
  return bad;
}

void install_worker(caf::event_based_actor* self, installer_actor installer, handler_run run,
                    handler_fn fn) {
  run.cfg.on_child = [self, installer](int pgid) {
    self->send(installer, atom::install::value, static_cast<int32_t>(pgid));
  };
  install_outcome out;
  auto failed = [&](const std::string& why) {
    out = install_outcome{};
    out.result = static_cast<int32_t>(model::update_result::update_failed);
    out.error_message = "the " + run.note.spec.package_type + " handler failed: " + why;
  };
  try {
    out = fn(run);
  } catch (const std::exception& e) {
    failed(e.what());
  } catch (...) {
    failed("unknown exception");
  }
  self->send(installer, atom::report::value, out.ok, out.result, out.error_message,
             out.rolled_back);
  self->quit();
}

caf::actor launch_detached_worker(caf::actor_system& sys, installer_actor installer,
                                  handler_run run) {
  return sys.spawn<caf::detached>(install_worker, std::move(installer), std::move(run),
                                  handler_fn{run_handler});
}

}  // namespace coapfleet::agent
