// A job's campaign (model/campaign.hpp decides, this does): after every
// change the actor asks the plan what to do on its durable record; nodes to
// start are resolved through the registry, then started in a round of their
// own (written, then notified). Timers bring it back for soak ends, windows
// and automatic retries.
#include <algorithm>
#include <map>

#include "actors/server/job_internal.hpp"
#include "common/clock.hpp"
#include "common/log.hpp"
#include "model/campaign.hpp"
#include "model/targets.hpp"
#include "model/rules.hpp"

namespace coapfleet::server::job_detail {

void start_attempt(const job_state& st, model::node_job_state& n, uint32_t attempt,
                   model::node_status status, model::millis now) {
  n.state = model::node_update_state::pending;
  n.attempt = attempt;
  n.progress = -1;
  n.result = 0;
  n.error_message.clear();
  n.started_at = now;
  n.updated_at = now;
  n.retry_at = 0;
  if (st.cfg.skip_offline && status == model::node_status::offline) {
    n.state = model::node_update_state::skipped;
    n.error_message = "node was offline when attempt " + std::to_string(attempt) + " started";
  }
}

void apply_plan(self_ptr self, job_round& r, const std::vector<job_target>* resolved,
                model::millis now, const std::vector<std::string>* requested) {
  auto& rec = r.next;
  if (r.deleted)
    return;
  auto plan = model::plan_campaign(rec, now);
  if (!plan.changes())
    return;
  if (plan.next.paused && !rec.campaign.paused)
    r.durable.push_back([self, why = plan.next.pause_reason] {
      CF_WARN("job", "job ", self->state.record.job_id, " paused: ", why);
    });
  if (plan.next.wave != rec.campaign.wave)
    r.durable.push_back([self, wave = plan.next.wave] {
      CF_INFO("job", "job ", self->state.record.job_id, ": wave ", wave, " starts");
    });
  rec.campaign = plan.next;
  for (auto& [id, at] : plan.schedule_retry)
    if (auto* n = find_node(rec, id)) {
      n->retry_at = at;
      r.batch.ops.emplace_back(put_node_state{rec.job_id, *n});
    }
  std::map<std::string, const job_target*> where;
  if (resolved)
    for (auto& t : *resolved)
      where[t.node_id] = &t;
  auto targets = std::make_shared<std::vector<job_target>>();
  auto begin = [&](const std::string& id, bool retry) {
    auto* n = find_node(rec, id);
    if (n == nullptr || resolved == nullptr)
      return;  // starts wait for a round that resolved them
    if (requested
        && std::find(requested->begin(), requested->end(), id) == requested->end())
      return;  // not asked about: the next plan resolves it
    auto w = where.find(id);
    if (w == where.end()) {
      n->state = model::node_update_state::skipped;
      n->error_message = "node is no longer registered";
      n->started_at = now;
      n->updated_at = now;
      n->retry_at = 0;
    } else {
      start_attempt(self->state, *n, retry ? n->attempt + 1 : std::max<uint32_t>(n->attempt, 1),
                    w->second->status, now);
      if (n->state == model::node_update_state::pending)
        targets->push_back(*w->second);
    }
    r.batch.ops.emplace_back(put_node_state{rec.job_id, *n});
  };
  for (auto& id : plan.start)
    begin(id, false);
  for (auto& id : plan.retry)
    begin(id, true);
  r.publish = true;
  write_job_state(r, now);
  refresh_status(r, now);
  if (!targets->empty())
    r.durable.push_back([self, targets] {
      for (auto& t : *targets)
        if (auto* n = find_node(self->state.record, t.node_id);
            n && n->state == model::node_update_state::pending)
          notify_node(self, *n, t.ip_address, t.port);
    });
}

void arm_wake(self_ptr self, model::millis at) {
  auto& st = self->state;
  if (at <= 0 || (st.wake_at > 0 && st.wake_at <= at))
    return;
  st.wake_at = at;
  auto delay = std::max<model::millis>(at - now_millis(), 1);
  self->delayed_send(self, std::chrono::milliseconds(delay), atom::tick::value, at);
}

void schedule(self_ptr self, model::millis at) {
  auto& st = self->state;
  if (st.deleted || st.planning || st.record.status != model::job_status::in_progress)
    return;
  // A timer's time is the clock's word (as for deadlines): what it was armed
  // for is due when it fires.
  auto now = std::max(now_millis(), at);
  auto plan = model::plan_campaign(st.record, now);
  arm_wake(self, plan.wake_at);
  if (!plan.changes())
    return;
  st.planning = true;
  if (plan.start.empty() && plan.retry.empty()) {
    submit(self, [now](self_ptr self, job_round& r) {
      self->state.planning = false;
      apply_plan(self, r, nullptr, std::max(now, now_millis()));
    });
    return;
  }
  auto ids = plan.start;
  ids.insert(ids.end(), plan.retry.begin(), plan.retry.end());
  std::sort(ids.begin(), ids.end());
  st.queue.push_back({{}, [ids = std::move(ids), now](self_ptr self) mutable {
                        self->request(self->state.registry, std::chrono::seconds(30),
                                      atom::resolve::value, ids, true)
                          .then(
                            [self, ids, now](std::vector<job_target>& targets) {
                              self->state.planning = false;
                              auto r = std::make_shared<job_round>();
                              r->next = self->state.record;
                              r->deleted = self->state.deleted;
                              apply_plan(self, *r, &targets, std::max(now, now_millis()),
                                         &ids);
                              commit_round(self, std::move(r));
                            },
                            [self](caf::error& err) {
                              self->state.planning = false;
                              CF_WARN("job", "job ", self->state.record.job_id,
                                      ": cannot resolve the nodes to start: ",
                                      caf::to_string(err));
                              arm_wake(self, now_millis() + 5000);
                              end_round(self);
                            });
                      }});
  next_round(self);
}

void on_wake(self_ptr self, model::millis at) {
  if (at != self->state.wake_at)
    return;  // superseded by an earlier timer (which re-armed what is still needed)
  self->state.wake_at = 0;
  schedule(self, at);
}

void plan_joiner(self_ptr self, job_round& r, const job_target& t) {
  auto& rec = r.next;
  if (r.deleted || rec.status != model::job_status::in_progress)
    return;
  auto now = now_millis();
  if (auto* n = find_node(rec, t.node_id)) {
    if (n->state != model::node_update_state::skipped)
      return;
    n->state = model::node_update_state::pending;  // the campaign starts it
    n->attempt += 1;
    n->started_at = 0;
    n->retry_at = 0;
    n->error_message.clear();
    n->updated_at = now;
    r.batch.ops.emplace_back(put_node_state{rec.job_id, *n});
    r.durable.push_back([self, id = t.node_id] {
      CF_INFO("job", "job ", self->state.record.job_id, ": skipped node ", id,
              " is back online: it gets another attempt");
    });
  } else {
    if (!rec.spec.dynamic || rec.campaign.closed || !model::targeted(rec.spec, t.node_id, t.traits))
      return;
    model::node_job_state joiner;
    joiner.node_id = t.node_id;
    joiner.wave = model::late_wave(rec);
    joiner.updated_at = now;
    auto at = std::lower_bound(rec.nodes.begin(), rec.nodes.end(), t.node_id,
                               [](const model::node_job_state& x, const std::string& id) {
                                 return x.node_id < id;
                               });
    r.batch.ops.emplace_back(put_node_state{rec.job_id, joiner});
    rec.nodes.insert(at, std::move(joiner));
    r.durable.push_back([self, id = t.node_id, wave = model::late_wave(rec)] {
      CF_INFO("job", "job ", self->state.record.job_id, ": node ", id, " joins wave ", wave);
    });
  }
  r.publish = true;
}

void plan_campaign_action(self_ptr self, job_round& r, const std::string& action,
                          const peer& from,
                          caf::typed_response_promise<model::job_record> rp) {
  auto& rec = r.next;
  if (r.deleted)
    return refuse(r, rp, unknown_job(rec.job_id));
  auto& c = rec.campaign;
  auto now = now_millis();
  if (action == "close") {
    if (!rec.spec.dynamic)
      return refuse(r, rp,
                    make_api_error(api_errc::bad_request,
                                   "job " + rec.job_id + " is not dynamic: it takes no late "
                                   "joiners, there is nothing to close",
                                   "job_id"));
    if (c.closed)
      return refuse(r, rp,
                    make_api_error(api_errc::bad_request, "job " + rec.job_id + " is closed already",
                                   "job_id"));
    c.closed = true;
    write_job_state(r, now);
    refresh_status(r, now);
  } else {
    if (rec.status != model::job_status::in_progress)
      return refuse(r, rp,
                    make_api_error(api_errc::bad_request,
                                   "job " + rec.job_id + " is " + to_string(rec.status)
                                     + ": only a running campaign can be paused or resumed",
                                   "job_id", "status", to_string(rec.status)));
    bool pause = action == "pause";
    if (c.paused == pause)
      return refuse(r, rp,
                    make_api_error(api_errc::bad_request,
                                   "job " + rec.job_id
                                     + (pause ? " is paused already" : " is not paused"),
                                   "job_id", "pause_reason", c.pause_reason));
    c.paused = pause;
    c.pause_reason = pause ? "paused by an operator (" + from.address + ")" : std::string();
    if (!pause) {
      // The operator saw why it paused: what failed so far, and the wave as
      // it stands, no longer pause it.
      c.resumed_at = now;
      c.accepted_wave = c.wave;
    }
    write_job_state(r, now);
  }
  r.publish = true;
  r.durable.push_back([self, action, who = from.address] {
    CF_INFO("job", "job ", self->state.record.job_id, ": ", action, " by ", who);
  });
  answer(r, rp, [self] { return self->state.record; });
}

}  // namespace coapfleet::server::job_detail
