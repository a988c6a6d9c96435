#include "actors/agent/installer.hpp"

#include <cerrno>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actors/agent/journal.hpp"
#include "common/log.hpp"

namespace coapfleet::agent {

namespace {

constexpr uint8_t block_szx = 6;  // 1024-byte blocks
constexpr int64_t block_size = 1024;

struct download_state {
  std::string path;
  int fd = -1;
  int64_t next_block = 0;
  uint64_t request_id = 0;
  int retries = 0;
  int last_reported_decile = -1;
};

/// The handler run in progress: its worker (monitored) and the process group
/// of the child it runs, if any.
struct handler_run_state {
  uint64_t id = 0;
  caf::actor worker;  ///< invalid: no run in progress
  int32_t pgid = 0;   ///< 0: no child process right now
};

struct installer_state {
  static inline const char* name = "installer";
  installer_config cfg;
  reporter_actor reporter;
  agent_transport_actor transport;
  job_journal journal;
  std::string journal_path;
  bool busy = false;
  download_state dl;
  uint64_t next_id = 1;
  handler_run_state run;
  uint64_t next_run = 1;
};

using self_ptr = installer_actor::stateful_pointer<installer_state>;

void start_next(self_ptr self);

void save(self_ptr self) {
  std::string err;
  if (!save_journal(self->state.journal_path, self->state.journal, err))
    CF_ERROR("installer", err);
}

const model::update_notification& current(self_ptr self) {
  return self->state.journal.jobs.front().note;
}

void report(self_ptr self, model::node_update_state s, int32_t progress = -1,
            int32_t result = -1, std::string error = {}) {
  model::update_report r;
  r.job_id = current(self).job_id;
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
void finish(self_ptr self, bool ok, int32_t result, std::string error) {
  auto& st = self->state;
  auto job = current(self);
  if (ok) {
    CF_INFO("installer", "job ", job.job_id, " succeeded");
    report(self, model::node_update_state::succeeded, 100, result);
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

/// Forgets the current handler run: its worker is not heard any more.
void end_run(self_ptr self) {
  auto& st = self->state;
  if (st.run.worker)
    self->demonitor(st.run.worker);
  st.run = handler_run_state{};
}

/// Whether the message being handled comes from the current run's worker.
bool from_current_worker(self_ptr self) {
  auto& worker = self->state.run.worker;
  return worker && self->current_sender() == caf::actor_cast<caf::strong_actor_ptr>(worker);
}

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
  auto& front = st.journal.jobs.front();
  if (front.phase != job_phase::installing) {
    front.phase = job_phase::installing;
    save(self);
  }
  report(self, model::node_update_state::installing);
  handler_run run{front.note, st.cfg.handlers,
                  st.cfg.state_dir + "/downloads/" + front.note.job_id + ".part"};
  auto type = run.note.spec.package_type;
  auto limit = handler_timeout(run.note.spec, run.cfg) + st.cfg.watchdog_grace;
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

/// The current run's worker ended without a report.
void on_worker_down(self_ptr self, const caf::down_msg& dm) {
  auto& st = self->state;
  if (!st.run.worker || dm.source != st.run.worker.address())
    return;  // a worker that already reported, or was abandoned
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
  auto limit = handler_timeout(spec, st.cfg.handlers) + st.cfg.watchdog_grace;
  auto msg = "the " + spec.package_type + " handler did not finish within "
             + std::to_string(limit.count()) + " s (timed out); abandoned";
  if (st.run.pgid > 0) {
    ::kill(-st.run.pgid, SIGKILL);
    msg += ", its process group " + std::to_string(st.run.pgid) + " killed";
  }
  end_run(self);
  finish(self, false, static_cast<int32_t>(model::update_result::update_failed), std::move(msg));
}

void request_block(self_ptr self) {
  auto& st = self->state;
  auto& note = current(self);
  client_request req;
  req.method = 1;  // GET
  req.host = st.cfg.server_host;
  req.port = st.cfg.server_port;
  req.path = "artifacts/" + note.spec.artifact;
  req.block2_num = static_cast<int32_t>(st.dl.next_block);
  req.block2_szx = block_szx;
  st.dl.request_id = st.next_id++;
  self->send(st.transport, atom::request::value, st.dl.request_id, std::move(req));
}

/// Downloads the artifact block by block into downloads/<job>.part, resuming
/// after the last complete block already on disk.
void begin_download(self_ptr self) {
  auto& st = self->state;
  auto& front = st.journal.jobs.front();
  if (front.phase != job_phase::downloading) {
    front.phase = job_phase::downloading;
    save(self);
  }
  ::mkdir((st.cfg.state_dir + "/downloads").c_str(), 0755);
  st.dl = download_state{};
  st.dl.path = st.cfg.state_dir + "/downloads/" + front.note.job_id + ".part";
  st.dl.fd = ::open(st.dl.path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (st.dl.fd < 0)
    return finish(self, false, static_cast<int32_t>(model::update_result::not_enough_storage),
                  "cannot open " + st.dl.path + ": " + std::strerror(errno));
  struct stat sb {};
  ::fstat(st.dl.fd, &sb);
  st.dl.next_block = sb.st_size / block_size;
  if (::ftruncate(st.dl.fd, st.dl.next_block * block_size) != 0)
    CF_WARN("installer", "cannot truncate ", st.dl.path);
  if (st.dl.next_block > 0)
    CF_INFO("installer", "job ", front.note.job_id, ": resuming download of ",
            front.note.spec.artifact, " at block ", st.dl.next_block);
  else
    CF_INFO("installer", "job ", front.note.job_id, ": downloading ", front.note.spec.artifact,
            " (", front.note.spec.artifact_size, " bytes)");
  report(self, model::node_update_state::downloading, 0);
  request_block(self);
}

void on_block(self_ptr self, client_response& r) {
  auto& st = self->state;
  auto& note = current(self);
  if (r.code == 0 || r.code == 503) {
    if (++st.dl.retries > st.cfg.download_retries)
      return finish(self, false, static_cast<int32_t>(model::update_result::connection_lost),
                    "download of " + note.spec.artifact + " stopped at block "
                      + std::to_string(st.dl.next_block) + ": "
                      + (r.error.empty() ? "server busy" : r.error));
    auto delay = std::chrono::seconds(1 << std::min(st.dl.retries - 1, 4));
    self->delayed_send(self, delay, atom::tick::value);
    return;
  }
  if (r.code == 404)
    return finish(self, false, static_cast<int32_t>(model::update_result::invalid_uri),
                  "artifact " + note.spec.artifact + " not found on the server");
  if (r.code != 205)
    return finish(self, false, static_cast<int32_t>(model::update_result::update_failed),
                  "download of " + note.spec.artifact + " answered " + std::to_string(r.code / 100)
                    + "." + std::to_string(r.code % 100));
  // Every block must come from the version the job names.
  uint64_t etag = 0;
  for (unsigned char c : r.etag)
    etag = (etag << 8) | c;
  // (A block without an ETag is taken: the whole file's SHA-256 is checked
  // before anything is installed.)
  if (!note.spec.artifact_sha256.empty() && !r.etag.empty()
      && etag != model::etag_of_sha256(note.spec.artifact_sha256))
    return finish(self, false, static_cast<int32_t>(model::update_result::integrity_check_failed),
                  "artifact " + note.spec.artifact
                    + " changed on the server during the download (ETag mismatch)");
  if (r.block2_num >= 0 && r.block2_num != st.dl.next_block) {
    request_block(self);  // an answer to an older request: ask again
    return;
  }
  st.dl.retries = 0;
  auto offset = st.dl.next_block * block_size;
  if (::pwrite(st.dl.fd, r.payload.data(), r.payload.size(), offset)
      != static_cast<ssize_t>(r.payload.size()))
    return finish(self, false, static_cast<int32_t>(model::update_result::not_enough_storage),
                  "cannot write " + st.dl.path + ": " + std::strerror(errno));
  bool more = r.block2_num >= 0 && r.block2_more;
  auto total = note.spec.artifact_size > 0 ? note.spec.artifact_size : r.size2;
  if (more) {
    ++st.dl.next_block;
    if (total > 0) {
      int decile = static_cast<int>(10 * (offset + static_cast<int64_t>(r.payload.size())) / total);
      if (decile > st.dl.last_reported_decile && decile < 10) {
        st.dl.last_reported_decile = decile;
        report(self, model::node_update_state::downloading, decile * 10);
      }
    }
    request_block(self);
    return;
  }
  ::fsync(st.dl.fd);
  ::close(st.dl.fd);
  st.dl.fd = -1;
  CF_INFO("installer", "job ", note.job_id, ": downloaded ", offset + r.payload.size(), " bytes");
  report(self, model::node_update_state::downloaded, 100);
  run_install(self);
}

void start_next(self_ptr self) {
  auto& st = self->state;
  if (st.busy || st.journal.jobs.empty())
    return;
  st.busy = true;
  auto& front = st.journal.jobs.front();
  auto& spec = front.note.spec;
  if (spec.package_type == "file") {
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
                  "the agent restarted while the script ran; a script is not run twice");
  run_install(self);
}

}  // namespace

installer_actor spawn_installer(caf::actor_system& sys, installer_config cfg,
                                reporter_actor reporter, agent_transport_actor transport) {
  auto fn = [](self_ptr self, installer_config cfg, reporter_actor reporter,
               agent_transport_actor transport) -> installer_actor::behavior_type {
    auto& st = self->state;
    st.cfg = std::move(cfg);
    st.reporter = std::move(reporter);
    st.transport = std::move(transport);
    st.journal_path = st.cfg.state_dir + "/journal.json";
    self->set_down_handler([self](caf::down_msg& dm) { on_worker_down(self, dm); });
    std::string err;
    st.journal = load_journal(st.journal_path, err);
    if (!err.empty())
      CF_WARN("installer", err);
    if (!st.journal.jobs.empty())
      CF_INFO("installer", st.journal.jobs.size(), " unfinished jobs in the journal; resuming ",
              st.journal.jobs.front().note.job_id);
    start_next(self);
    return {
      [self](atom::notify, model::update_notification& note) -> caf::result<bool> {
        auto& st = self->state;
        if (note.node_id != st.cfg.node_id)
          return make_api_error(api_errc::bad_request,
                                "notification for node " + note.node_id + ", this is node "
                                  + st.cfg.node_id,
                                "node_id");
        if (st.journal.knows(note.job_id)) {
          CF_DEBUG("installer", "job ", note.job_id, " already known; not installed twice");
          return true;
        }
        CF_INFO("installer", "job ", note.job_id, " accepted: ", note.spec.name, " ",
                note.spec.version, " (", note.spec.package_type, ")",
                st.busy ? ", queued behind " + st.journal.jobs.front().note.job_id : "");
        auto job_id = note.job_id;
        st.journal.jobs.push_back({std::move(note), job_phase::queued});
        std::string err;
        if (!save_journal(st.journal_path, st.journal, err)) {
          // Not durable, so not accepted: the server hears of it and may retry.
          st.journal.jobs.pop_back();
          CF_ERROR("installer", "job ", job_id, " refused: ", err);
          return make_api_error(api_errc::internal, "cannot journal job " + job_id + ": " + err);
        }
        start_next(self);  // journaled before the 2.04 leaves
        return true;
      },
      [self](atom::status) -> caf::result<std::string, uint32_t> {
        auto& st = self->state;
        std::string cur = st.busy && !st.journal.jobs.empty() ? st.journal.jobs.front().note.job_id
                                                              : std::string();
        auto queued = static_cast<uint32_t>(st.journal.jobs.size() - (cur.empty() ? 0 : 1));
        return {cur, queued};
      },
      [self](atom::response, uint64_t id, client_response& r) {
        if (id == self->state.dl.request_id && self->state.busy)
          on_block(self, r);
      },
      [self](atom::report, bool ok, int32_t result, std::string& error) {
        if (!from_current_worker(self)) {
          CF_WARN("installer", "ignoring the late result of an abandoned handler run: ",
                  ok ? "succeeded" : error);
          return;
        }
        end_run(self);
        finish(self, ok, result, std::move(error));
      },
      [self](atom::install, int32_t pgid) {
        if (from_current_worker(self)) {
          self->state.run.pgid = pgid;
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
