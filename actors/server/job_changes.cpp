// The changes a job round plans: trigger, retry, agents' reports, cancel,
// delete, and what the transport says of notifications and cancels.
#include <algorithm>

#include "actors/server/job_internal.hpp"
#include "common/clock.hpp"
#include "common/log.hpp"
#include "model/campaign.hpp"
#include "model/rules.hpp"
#include "model/targets.hpp"

namespace coapfleet::server::job_detail {

namespace {

bool retryable(model::node_update_state s) {
  return s == model::node_update_state::failed || s == model::node_update_state::timed_out
         || s == model::node_update_state::rolled_back
         || s == model::node_update_state::skipped;
}

}  // namespace

/// Trigger: judged on the durable record; targets are resolved, the nodes
/// marked pending (or skipped), and the agents notified once that is durable.
void start_install(self_ptr self, const peer& from,
                   caf::typed_response_promise<model::job_record> rp) {
  auto& st = self->state;
  if (st.deleted) {
    rp.deliver(unknown_job(st.record.job_id));
    return end_round(self);
  }
  if (st.record.status != model::job_status::created) {
    rp.deliver(make_api_error(api_errc::bad_request,
                              "job " + st.record.job_id + " was already triggered", "job_id",
                              "status", to_string(st.record.status)));
    return end_round(self);
  }
  self->request(st.registry, std::chrono::seconds(30), atom::resolve::value, st.record.spec)
    .then(
      [self, rp, from](std::vector<job_target>& targets) mutable {
        auto& st = self->state;
        if (targets.empty()) {
          rp.deliver(make_api_error(api_errc::bad_request,
                                    st.record.spec.target_labels.empty()
                                      ? "no registered nodes match target_nodes"
                                      : "no registered nodes match target_nodes or "
                                        "target_labels",
                                    st.record.spec.target_labels.empty() ? "target_nodes"
                                                                         : "target_labels"));
          return end_round(self);
        }
        auto now = now_millis();
        auto r = std::make_shared<job_round>();
        r->next = st.record;
        auto& rec = r->next;
        rec.nodes.clear();
        for (auto& t : targets) {
          model::node_job_state n;
          n.node_id = t.node_id;  // not started: its wave starts it
          n.updated_at = now;
          rec.nodes.push_back(std::move(n));
        }
        std::sort(rec.nodes.begin(), rec.nodes.end(),
                  [](const auto& a, const auto& b) { return a.node_id < b.node_id; });
        model::assign_waves(rec.nodes, rec.spec.waves);
        rec.status = model::job_status::in_progress;
        rec.campaign = model::campaign_state{};
        // The first wave starts with the trigger (within max_parallel and
        // the window), the rest as the campaign goes.
        apply_plan(self, *r, &targets, now);
        for (auto& n : rec.nodes)
          if (n.started_at == 0)
            r->batch.ops.emplace_back(put_node_state{rec.job_id, n});
        write_job_state(*r, now);
        refresh_status(*r, now);  // e.g. every target skipped
        r->publish = true;
        r->durable.push_back([self, rp, from, count = targets.size()]() mutable {
          auto& st = self->state;
          CF_INFO("job", "job ", st.record.job_id, " triggered by ", from.address, ":",
                  from.port, " targets=", count);
          rp.deliver(st.record);
        });
        r->failed.push_back([rp](const caf::error& err) mutable { rp.deliver(err); });
        commit_round(self, std::move(r));
      },
      [self, rp](caf::error& err) mutable {
        rp.deliver(std::move(err));
        end_round(self);
      });
}

/// Retry: failed, timed-out and skipped nodes get their next attempt; the
/// campaign starts them (within max_parallel and the window; not while it is
/// paused: resume it too).
void plan_retry(self_ptr self, job_round& r, const peer& from,
                caf::typed_response_promise<model::job_record> rp) {
  auto& rec = r.next;
  if (r.deleted)
    return refuse(r, rp, unknown_job(rec.job_id));
  auto s = rec.status;
  if (s == model::job_status::created || s == model::job_status::cancelled)
    return refuse(r, rp,
                  make_api_error(api_errc::bad_request,
                                 "job " + rec.job_id + " is " + to_string(s)
                                   + ": only a triggered job that was not cancelled "
                                     "can be retried",
                                 "job_id", "status", to_string(s)));
  auto now = now_millis();
  size_t retried = 0;
  for (auto& n : rec.nodes)
    if (retryable(n.state)) {
      n.state = model::node_update_state::pending;
      n.attempt += 1;
      n.started_at = 0;  // the campaign starts it
      n.retry_at = 0;
      n.progress = -1;
      n.result = 0;
      n.error_message.clear();
      n.updated_at = now;
      r.batch.ops.emplace_back(put_node_state{rec.job_id, n});
      ++retried;
    }
  if (retried == 0)
    return refuse(r, rp,
                  make_api_error(api_errc::bad_request,
                                 "job " + rec.job_id
                                   + " has no failed, timed-out or skipped nodes to retry",
                                 "job_id", "status", to_string(s)));
  rec.status = model::job_status::in_progress;
  rec.error_message.clear();
  write_job_state(r, now);
  r.publish = true;
  r.durable.push_back([id = rec.job_id, who = from.address, retried] {
    CF_INFO("job", "job ", id, " retried by ", who, ": ", retried, " nodes get another attempt");
  });
  answer(r, rp, [self] { return self->state.record; });
}

void plan_report(self_ptr, job_round& r, model::update_report rep,
                 caf::typed_response_promise<atom::ok> rp) {
  auto& rec = r.next;
  if (r.deleted)
    return refuse(r, rp, unknown_job(rec.job_id));
  if (rec.status == model::job_status::created)
    return refuse(r, rp,
                  make_api_error(api_errc::bad_request,
                                 "job " + rec.job_id + " has not been triggered", "job_id"));
  auto* n = find_node(rec, rep.node_id);
  if (n == nullptr)
    return refuse(r, rp,
                  make_api_error(api_errc::not_found,
                                 "node " + rep.node_id + " is not a target of job " + rec.job_id,
                                 "node_id"));
  if (rep.attempt > n->attempt)
    return refuse(r, rp,
                  make_api_error(api_errc::bad_request,
                                 "node " + rep.node_id + " is at attempt "
                                   + std::to_string(n->attempt) + " of job " + rec.job_id,
                                 "attempt", "current_attempt", std::to_string(n->attempt)));
  if (rep.attempt != 0 && rep.attempt < n->attempt) {
    // A report of an earlier attempt (delayed in the agent's outbox): taken
    // and dropped, so the agent stops sending it.
    r.durable.push_back([id = rec.job_id, node = rep.node_id, a = rep.attempt] {
      CF_DEBUG("job", "job ", id, " node ", node, ": report of earlier attempt ", a, " dropped");
    });
    return answer(r, rp, [] { return atom::ok::value; });
  }
  auto why = model::check_transition(n->state, rep.state);
  if (!why.empty())
    return refuse(r, rp,
                  make_api_error(api_errc::bad_request, why, "status", "current_status",
                                 to_string(n->state)));
  // Success means the node runs it: a node that keeps an inventory (it
  // sends one with its success) succeeded only when it names the version.
  std::string not_running;
  if (rep.state == model::node_update_state::succeeded && rep.inventory_given
      && !model::is_terminal(n->state)
      && !model::runs_version(rep.inventory, rec.spec, not_running)) {
    rep.state = model::node_update_state::failed;
    rep.result = static_cast<int32_t>(model::update_result::update_failed);
    rep.error_message = "the install reported success, but " + not_running;
  }
  auto now = now_millis();
  if (n->state != rep.state)
    r.durable.push_back([id = rec.job_id, node = rep.node_id, from = n->state, to = rep.state] {
      CF_DEBUG("job", "job ", id, " node ", node, ": ", to_string(from), " -> ", to_string(to));
    });
  n->state = rep.state;
  if (rep.progress >= 0)
    n->progress = rep.progress;
  else if (rep.state == model::node_update_state::succeeded)
    n->progress = 100;
  if (rep.result >= 0)
    n->result = rep.result;
  else if (rep.state == model::node_update_state::succeeded)
    n->result = static_cast<int32_t>(model::update_result::success);
  else if ((rep.state == model::node_update_state::failed
            || rep.state == model::node_update_state::rolled_back)
           && n->result <= 1)
    n->result = static_cast<int32_t>(model::update_result::update_failed);
  else if (rep.state == model::node_update_state::cancelled)
    n->result = static_cast<int32_t>(model::update_result::cancelled);
  if (!rep.error_message.empty() || model::is_terminal(rep.state))
    n->error_message = rep.error_message;
  n->updated_at = now;
  r.batch.ops.emplace_back(put_node_state{rec.job_id, *n});
  refresh_status(r, now);
  r.publish = true;
  answer(r, rp, [] { return atom::ok::value; });
}

/// Cancel: the job is cancelled at once; its nodes that have not finished
/// are told to stop once that is durable, and each becomes cancelled on its
/// agent's report (or shows what it really did: an install that ran to its
/// end reports succeeded or failed). A job never triggered just ends.
void plan_cancel(self_ptr self, job_round& r, bool force, const peer& from,
                 caf::typed_response_promise<model::job_record> rp) {
  auto& rec = r.next;
  if (r.deleted)
    return refuse(r, rp, unknown_job(rec.job_id));
  auto s = rec.status;
  auto open = model::count_states(rec.nodes);
  bool again = s == model::job_status::cancelled && force && open.finished() < open.total;
  if (s != model::job_status::created && s != model::job_status::in_progress && !again)
    return refuse(r, rp,
                  make_api_error(api_errc::bad_request,
                                 "job " + rec.job_id
                                   + (s == model::job_status::cancelled
                                        ? " was already cancelled (with force, a cancel stops "
                                          "the installs that still run)"
                                        : " has already finished"),
                                 "job_id", "status", to_string(s)));
  auto now = now_millis();
  for (auto& n : rec.nodes)
    if (n.started_at == 0 && n.state == model::node_update_state::pending) {
      // Never started: nothing ran, no agent to ask.
      n.state = model::node_update_state::cancelled;
      n.result = static_cast<int32_t>(model::update_result::cancelled);
      n.error_message = "cancelled before it started";
      n.updated_at = now;
      r.batch.ops.emplace_back(put_node_state{rec.job_id, n});
      r.publish = true;
    }
  if (s != model::job_status::cancelled) {
    rec.status = model::job_status::cancelled;
    rec.error_message = std::string("cancelled by an operator") + (force ? " (force)" : "");
    write_job_state(r, now);
    r.publish = true;
  }
  r.durable.push_back([self, force, who = from.address] {
    CF_INFO("job", "job ", self->state.record.job_id, " cancelled by ", who,
            force ? " (force)" : "");
    send_cancels(self, force);
  });
  answer(r, rp, [self] { return self->state.record; });
}

void plan_remove(self_ptr, job_round& r, caf::typed_response_promise<atom::ok> rp) {
  auto& rec = r.next;
  if (r.deleted)
    return refuse(r, rp, unknown_job(rec.job_id));
  auto open = model::count_states(rec.nodes);
  if (rec.status == model::job_status::in_progress
      || (rec.status == model::job_status::cancelled && open.finished() < open.total))
    return refuse(r, rp,
                  make_api_error(api_errc::conflict,
                                 "job " + rec.job_id
                                   + (rec.status == model::job_status::in_progress
                                        ? " is running; cancel it first"
                                        : " is cancelled but not every node has confirmed yet"),
                                 "job_id", "status", to_string(rec.status)));
  r.batch.ops.emplace_back(drop_job{rec.job_id});
  r.deleted = true;
  answer(r, rp, [] { return atom::ok::value; });
}

/// The transport's word on a notification: no one waits for it; when it is
/// not committed the node stays pending (and is notified again on a resume).
void plan_notified(self_ptr, job_round& r, const std::string& node_id, bool ok,
                   const std::string& detail) {
  auto& rec = r.next;
  auto* n = r.deleted ? nullptr : find_node(rec, node_id);
  if (n == nullptr || n->state != model::node_update_state::pending)
    return;  // the agent already reported further, or the job moved on
  auto now = now_millis();
  if (ok) {
    n->state = model::node_update_state::notified;
  } else {
    CF_WARN("job", "job ", rec.job_id, " node ", node_id, ": ", detail);
    n->state = model::node_update_state::failed;
    n->result = static_cast<int32_t>(model::update_result::update_failed);
    n->error_message = detail;
  }
  n->updated_at = now;
  r.batch.ops.emplace_back(put_node_state{rec.job_id, *n});
  refresh_status(r, now);
  r.publish = true;
  r.failed.push_back([id = rec.job_id, node_id](const caf::error& err) {
    CF_ERROR("job", "job ", id, " node ", node_id,
             ": notification outcome not stored: ", caf::to_string(err));
  });
}

/// The transport's word on a cancel: taken, the agent's report follows; not
/// taken, the node says so (it keeps its state: what it does is unknown).
void plan_cancel_sent(self_ptr, job_round& r, const std::string& node_id, bool ok,
                      const std::string& detail) {
  auto& rec = r.next;
  auto* n = r.deleted ? nullptr : find_node(rec, node_id);
  if (ok || n == nullptr || model::is_terminal(n->state))
    return;
  CF_WARN("job", "job ", rec.job_id, " node ", node_id, ": cancel not delivered: ", detail);
  n->error_message = "cancel not delivered: " + detail;
  n->updated_at = now_millis();
  r.batch.ops.emplace_back(put_node_state{rec.job_id, *n});
  r.publish = true;
}

}  // namespace coapfleet::server::job_detail
