#include "actors/agent/installer.hpp"

#include <algorithm>
#include <exception>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actors/agent/handler_group.hpp"
#include "actors/agent/installer_state.hpp"
#include "common/log.hpp"
#include "model/targets.hpp"

namespace coapfleet::agent {

namespace installer_detail {

void save(self_ptr self) {
  std::string err;
  if (!save_journal(self->state.journal_path, self->state.journal, err))
    CF_ERROR("installer", err);
}

const model::update_notification& current(self_ptr self) {
  return self->state.journal.jobs.front().note;
}

void report(self_ptr self, model::node_update_state s, int32_t progress, int32_t result,
            std::string error) {
  model::update_report r;
  r.job_id = current(self).job_id;
  r.attempt = current(self).attempt;
  r.node_id = self->state.cfg.node_id;
  r.state = s;
  r.progress = progress;
  r.result = result;
  r.error_message = std::move(error);
  self->send(self->state.reporter, atom::report::value, std::move(r));
}

void close_download(self_ptr self) {
  auto& dl = self->state.dl;
  if (dl.fd >= 0)
    ::close(dl.fd);
  dl = download_state{};
}

/// Ends the current job (reported), forgets its download, starts the next.
void finish(self_ptr self, bool ok, int32_t result, std::string error, bool rolled_back) {
  auto& st = self->state;
  auto job = current(self);
  if (ok) {
    // What it installed joins the inventory (durable first): the success
    // carries it, and the server counts it only when it names the version.
    auto installed = model::inventory_of(job.spec);
    model::merge_inventory(st.inventory, installed);
    while (st.inventory.size() > model::max_inventory) {  // room for what was installed now
      auto drop = std::find_if(st.inventory.rbegin(), st.inventory.rend(), [&](const auto& e) {
        return model::find(installed, e.first) == nullptr;
      });
      if (drop == st.inventory.rend())
        break;
      st.inventory.erase(std::next(drop).base());
    }
    std::string err;
    if (!save_inventory(st.inventory_path, st.inventory, err))
      CF_ERROR("installer", err);
    CF_INFO("installer", "job ", job.job_id, " succeeded: ", job.spec.name, " ",
            job.spec.version, " installed");
    model::update_report r;
    r.job_id = job.job_id;
    r.attempt = job.attempt;
    r.node_id = st.cfg.node_id;
    r.state = model::node_update_state::succeeded;
    r.progress = 100;
    r.result = result;
    r.inventory = st.inventory;
    r.inventory_given = true;
    self->send(st.reporter, atom::report::value, std::move(r));
  } else if (rolled_back) {
    CF_WARN("installer", "job ", job.job_id, " rolled back: ", error);
    report(self, model::node_update_state::rolled_back, -1, result, std::move(error));
  } else if (result == static_cast<int32_t>(model::update_result::cancelled)) {
    CF_INFO("installer", "job ", job.job_id, " cancelled: ", error);
    report(self, model::node_update_state::cancelled, -1, result, std::move(error));
  } else {
    CF_WARN("installer", "job ", job.job_id, " failed (result ", result, "): ", error);
    report(self, model::node_update_state::failed, -1, result, std::move(error));
  }
  auto path = st.dl.path;
  close_download(self);
  if (!path.empty())
    ::unlink(path.c_str());
  ::unlink((st.cfg.state_dir + "/downloads/" + job.job_id + ".part").c_str());
  st.journal.finish_front();
  save(self);
  st.busy = false;
  start_next(self);
}

namespace {

/// How long a run may take: the handler's timeout, twice with a health
/// check (it runs within the same timeout after the install).
std::chrono::seconds run_limit(const model::job_spec& spec, const handler_config& cfg) {
  auto t = handler_timeout(spec, cfg);
  return spec.health_check.empty() ? t : 2 * t;
}

/// Forgets the current handler run: its worker is not heard any more.
void end_run(self_ptr self) {
  auto& st = self->state;
  if (st.run.worker)
    self->demonitor(st.run.worker);
  if (st.run.pgid > 0)
    clear_handler_group(st.group_path);
  st.run = handler_run_state{};
}

/// Whether the message being handled comes from the current run's worker.
bool from_current_worker(self_ptr self) {
  auto& worker = self->state.run.worker;
  return worker && self->current_sender() == caf::actor_cast<caf::strong_actor_ptr>(worker);
}

}  // namespace

/// Runs the package_type handler on a worker of its own (handlers block:
/// child processes, file copies), under a watchdog of the handler's timeout
/// plus a grace period.
///
///   run_install ──► running ──► report from its worker ──► finish, next job
///                      ├──────► worker down, no report  ──► failed, next job
///                      └──────► watchdog fires          ──► kill its process
///                                                           group, failed,
///                                                           next job
///
/// A run that ended any of these ways is forgotten: a late report of its
/// worker is ignored.
void run_install(self_ptr self) {
  auto& st = self->state;
  if (st.stopping)
    return;  // the agent stops: the job stays journaled for its next start
  auto& front = st.journal.jobs.front();
  if (front.phase != job_phase::installing) {
    front.phase = job_phase::installing;
    save(self);
  }
  report(self, model::node_update_state::installing);
  handler_run run{front.note, st.cfg.handlers,
                  st.cfg.state_dir + "/downloads/" + front.note.job_id + ".part"};
  auto type = run.note.spec.package_type;
  auto limit = run_limit(run.note.spec, run.cfg) + st.cfg.watchdog_grace;
  CF_INFO("installer", "job ", run.note.job_id, ": installing (", type, ")");
  auto launch = st.cfg.launch ? st.cfg.launch : worker_launcher{launch_detached_worker};
  caf::actor worker;
  std::string why = "no worker";
  try {
    worker = launch(self->system(), caf::actor_cast<installer_actor>(self), std::move(run));
  } catch (const std::exception& e) {
    why = e.what();
  }
  if (!worker)
    return finish(self, false, static_cast<int32_t>(model::update_result::update_failed),
                  "cannot start the " + type + " handler: " + why);
  st.run = handler_run_state{st.next_run++, worker, 0};
  self->monitor(worker);
  self->delayed_send(self, limit, atom::deadline::value, st.run.id);
}

namespace {

/// The current run's worker ended without a report.
void on_worker_down(self_ptr self, const caf::down_msg& dm) {
  auto& st = self->state;
  if (!st.run.worker || dm.source != st.run.worker.address())
    return;  // a worker that already reported, or was abandoned
  if (st.stopping)
    return;  // the job stays journaled as interrupted
  auto type = current(self).spec.package_type;
  end_run(self);
  finish(self, false, static_cast<int32_t>(model::update_result::update_failed),
         "the " + type + " handler ended without a result (" + caf::to_string(dm.reason) + ")");
}

/// The watchdog of run `id`: when that run is still going, its handler is
/// stuck; kill what it runs and move on.
void on_watchdog(self_ptr self, uint64_t id) {
  auto& st = self->state;
  if (id != st.run.id || !st.run.worker)
    return;  // that run ended in time
  auto& spec = current(self).spec;
  auto limit = run_limit(spec, st.cfg.handlers) + st.cfg.watchdog_grace;
  auto msg = "the " + spec.package_type + " handler did not finish within "
             + std::to_string(limit.count()) + " s (timed out); abandoned";
  if (st.run.pgid > 0) {
    ::kill(-st.run.pgid, SIGKILL);
    msg += ", its process group " + std::to_string(st.run.pgid) + " killed";
  }
  end_run(self);
  finish(self, false, static_cast<int32_t>(model::update_result::update_failed), std::move(msg));
}

}  // namespace

void start_next(self_ptr self) {
  auto& st = self->state;
  if (st.busy || st.stopping || st.journal.jobs.empty())
    return;
  st.busy = true;
  auto& front = st.journal.jobs.front();
  auto& spec = front.note.spec;
  // With --verify-key nothing runs that the operator's key did not sign,
  // exactly as it is (the artifact's SHA-256 included).
  auto unsigned_why = signature_problem(self, spec);
  if (!unsigned_why.empty())
    return finish(self, false, static_cast<int32_t>(model::update_result::integrity_check_failed),
                  std::move(unsigned_why));
  if (spec.package_type == "file") {
    // A job this agent will not install (a setuid mode without
    // --allow-setid, a target_path outside the root) fails before anything
    // is fetched.
    auto allowed = check_file_job(spec, st.cfg.handlers);
    if (!allowed.ok)
      return finish(self, false, allowed.result, std::move(allowed.error_message));
    if (front.phase == job_phase::installing) {
      // Restarted during the install: the verified download is still there
      // and installing a file again is harmless.
      struct stat sb {};
      auto path = st.cfg.state_dir + "/downloads/" + front.note.job_id + ".part";
      if (::stat(path.c_str(), &sb) == 0 && (spec.artifact_size <= 0 || sb.st_size == spec.artifact_size))
        return run_install(self);
    }
    return begin_download(self);
  }
  if (front.phase == job_phase::installing && spec.package_type == "script")
    return finish(self, false, static_cast<int32_t>(model::update_result::update_failed),
                  "the agent restarted while the script ran (what it left running was killed); "
                  "a script is not run twice");
  run_install(self);
}

}  // namespace installer_detail

using namespace installer_detail;

installer_actor spawn_installer(caf::actor_system& sys, installer_config cfg,
                                reporter_actor reporter, agent_transport_actor transport) {
  auto fn = [](self_ptr self, installer_config cfg, reporter_actor reporter,
               agent_transport_actor transport) -> installer_actor::behavior_type {
    auto& st = self->state;
    st.servers = server_list(cfg.server_host, cfg.server_port, cfg.other_servers);
    st.cfg = std::move(cfg);
    st.reporter = std::move(reporter);
    st.transport = std::move(transport);
    st.journal_path = st.cfg.state_dir + "/journal.json";
    st.group_path = st.cfg.state_dir + "/handler-group";
    st.inventory_path = st.cfg.state_dir + "/inventory.json";
    if (auto left = kill_leftover_group(st.group_path); !left.empty())
      CF_WARN("installer", left);
    self->set_down_handler([self](caf::down_msg& dm) { on_worker_down(self, dm); });
    std::string err;
    st.journal = load_journal(st.journal_path, err);
    if (!err.empty())
      CF_WARN("installer", err);
    err.clear();
    st.inventory = load_inventory(st.inventory_path, err);
    if (!err.empty())
      CF_WARN("installer", err);
    if (!st.journal.jobs.empty())
      CF_INFO("installer", st.journal.jobs.size(), " unfinished jobs in the journal; resuming ",
              st.journal.jobs.front().note.job_id);
    start_next(self);
    return {
      [self](atom::notify, model::update_notification& note) -> caf::result<atom::ok> {
        return accept_notification(self, note);
      },
      [self](atom::cancel, std::string& job_id, uint32_t attempt, bool force) {
        return cancel_run(self, job_id, attempt, force);
      },
      [self](atom::cancel, uint64_t run) {
        auto& st = self->state;
        if (run == st.run.id && st.run.worker && st.run.pgid > 0) {
          CF_WARN("installer", "process group ", st.run.pgid,
                  " outlived the cancel's grace period: killed");
          signal_group(st.run.pgid, SIGKILL);
        }
      },
      [self](atom::stop) -> int32_t {
        auto& st = self->state;
        st.stopping = true;
        if (!st.run.worker || st.run.pgid <= 0)
          return 0;
        CF_INFO("installer", "stopping: process group ", st.run.pgid, " of job ",
                current(self).job_id, " gets SIGTERM");
        signal_group(st.run.pgid, SIGTERM);
        return st.run.pgid;
      },
      [self](atom::status) -> caf::result<std::string, uint32_t> {
        auto& st = self->state;
        std::string cur = st.busy && !st.journal.jobs.empty() ? st.journal.jobs.front().note.job_id
                                                              : std::string();
        auto queued = static_cast<uint32_t>(st.journal.jobs.size() - (cur.empty() ? 0 : 1));
        return {cur, queued};
      },
      [self](atom::response, uint64_t id, client_response& r) {
        if (on_spec(self, id, r))
          return;
        if (id == self->state.dl.request_id && self->state.busy)
          on_block(self, r);
      },
      [self](atom::job, uint64_t id) { on_fetch_deadline(self, id); },
      [self](atom::report, bool ok, int32_t result, std::string& error, bool rolled_back) {
        if (!from_current_worker(self)) {
          CF_WARN("installer", "ignoring the late result of an abandoned handler run: ",
                  ok ? "succeeded" : error);
          return;
        }
        auto cancelled = self->state.run.cancelled;
        if (cancelled)  // what the stopped leader started goes with it
          signal_group(self->state.run.group, SIGKILL);
        end_run(self);
        if (self->state.stopping && !ok) {
          // Most likely the stop's SIGTERM: not the job's failure.
          CF_INFO("installer", "job ", current(self).job_id,
                  " interrupted by the agent's stop; it stays journaled");
          return;
        }
        if (cancelled && !ok) {
          result = static_cast<int32_t>(model::update_result::cancelled);
          error = "cancelled by the server; the install was stopped (" + error + ")";
        }
        finish(self, ok, result, std::move(error), rolled_back && !cancelled);
      },
      [self](atom::install, int32_t pgid) {
        if (from_current_worker(self)) {
          auto& st = self->state;
          st.run.pgid = pgid;
          if (pgid > 0)
            st.run.group = pgid;
          std::string err;
          if (pgid <= 0)
            clear_handler_group(st.group_path);
          else if (!record_handler_group(st.group_path, pgid, err))
            CF_WARN("installer", "cannot record the handler's process group: ", err);
          if (pgid > 0 && (st.stopping || st.run.cancelled))
            signal_group(pgid, SIGTERM);  // started as it was being stopped
        } else if (pgid > 0 && self->current_sender() != nullptr) {
          // The worker of an abandoned run started another child: stop it.
          CF_WARN("installer", "killing process group ", pgid, " of an abandoned handler run");
          ::kill(-pgid, SIGKILL);
        }
      },
      [self](atom::deadline, uint64_t id) { on_watchdog(self, id); },
      [self](atom::tick) {
        if (self->state.busy && self->state.dl.fd >= 0)
          request_block(self);
      },
    };
  };
  return sys.spawn(fn, std::move(cfg), std::move(reporter), std::move(transport));
}

}  // namespace coapfleet::agent
