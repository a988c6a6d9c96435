// The installer's side of a cancel from the server (installer_actor's
// atom::cancel): queued work is dropped, a download stopped, a running
// install stopped only when forced. Every run it ends is reported
// cancelled (result 10) through the reporter, as any other step, so the
// server marks a node cancelled only on the agent's word.
#include <signal.h>
#include <unistd.h>

#include "actors/agent/handler_group.hpp"
#include "actors/agent/installer_state.hpp"
#include "common/log.hpp"

namespace coapfleet::agent::installer_detail {

namespace {

/// How long a forced cancel waits after SIGTERM before SIGKILL.
constexpr auto cancel_grace = std::chrono::seconds(3);

constexpr auto cancelled_result = static_cast<int32_t>(model::update_result::cancelled);

void report_cancelled(self_ptr self, const std::string& job_id, uint32_t attempt,
                      std::string why) {
  model::update_report r;
  r.job_id = job_id;
  r.attempt = attempt;
  r.node_id = self->state.cfg.node_id;
  r.state = model::node_update_state::cancelled;
  r.result = cancelled_result;
  r.error_message = std::move(why);
  self->send(self->state.reporter, atom::report::value, std::move(r));
}

}  // namespace

std::string cancel_run(self_ptr self, const std::string& job_id, uint32_t attempt, bool force) {
  auto& st = self->state;
  auto key = model::run_key(job_id, attempt);
  auto& jobs = st.journal.jobs;
  size_t i = 0;
  while (i < jobs.size() && model::run_key(jobs[i].note.job_id, jobs[i].note.attempt) != key)
    ++i;
  if (i == jobs.size()) {
    if (st.journal.knows(key))
      return "finished";  // its final report stands
    // Not heard of yet (its notification is late or lost): it never runs.
    st.journal.note_done(key);
    save(self);
    CF_INFO("installer", "job ", key, " cancelled before it arrived");
    report_cancelled(self, job_id, attempt, "cancelled by the server before it started");
    return "cancelled";
  }
  bool current_run = i == 0 && st.busy;
  if (!current_run) {
    CF_INFO("installer", "job ", key, " cancelled while queued: dropped");
    jobs.erase(jobs.begin() + static_cast<std::ptrdiff_t>(i));
    st.journal.note_done(key);
    save(self);
    report_cancelled(self, job_id, attempt, "cancelled by the server while queued; not run");
    return "cancelled";
  }
  if (!st.run.worker) {
    // Fetching its artifact: nothing is installed yet.
    finish(self, false, cancelled_result, "cancelled by the server during the download");
    return "cancelled";
  }
  if (!force) {
    CF_INFO("installer", "job ", key, " is installing; a cancel without force lets it end");
    return "running";
  }
  st.run.cancelled = true;
  CF_INFO("installer", "job ", key, " cancelled with force: its process group gets SIGTERM, ",
          "SIGKILL in ", cancel_grace.count(), " s");
  if (st.run.pgid > 0)
    signal_group(st.run.pgid, SIGTERM);  // a child started later gets it when it starts
  self->delayed_send(self, cancel_grace, atom::cancel::value, st.run.id);
  return "stopping";
}

}  // namespace coapfleet::agent::installer_detail
