// The job actor's rounds (commit, then change), its node deadlines and what
// it sends to agents. See job_internal.hpp for the machine.
#include <algorithm>
#include <limits>

#include "actors/server/job_internal.hpp"
#include "common/clock.hpp"
#include "common/log.hpp"
#include "model/campaign.hpp"
#include "model/rules.hpp"

namespace coapfleet::server::job_detail {

namespace {

/// How long a deadline whose commit failed waits before it is tried again.
constexpr auto deadline_retry = std::chrono::seconds(1);

}  // namespace

model::node_job_state* find_node(model::job_record& rec, const std::string& id) {
  auto i = std::lower_bound(rec.nodes.begin(), rec.nodes.end(), id,
                            [](const model::node_job_state& n, const std::string& k) {
                              return n.node_id < k;
                            });
  return i != rec.nodes.end() && i->node_id == id ? &*i : nullptr;
}

caf::error unknown_job(const std::string& id) {
  return make_api_error(api_errc::not_found, "job not found", "job_id", "job_id", id);
}

void refresh_status(job_round& r, model::millis now) {
  auto& rec = r.next;
  auto next = model::derive_job_status(rec.status, model::count_states(rec.nodes));
  if (rec.status == model::job_status::in_progress
      && ((rec.spec.dynamic && !rec.campaign.closed)  // open for late joiners until closed
          || std::any_of(rec.nodes.begin(), rec.nodes.end(),
                         [&](const model::node_job_state& n) {
                           return model::awaits_retry(rec.spec, n);  // a retry is ahead
                         })))
    next = rec.status;
  if (next == rec.status)
    return;
  r.durable.push_back([id = rec.job_id, next, was = rec.status] {
    CF_INFO("job", "job ", id, " is ", to_string(next), " (was ", to_string(was), ")");
  });
  rec.status = next;
  rec.error_message.clear();
  if (next == model::job_status::failed || next == model::job_status::partially_failed) {
    // A one-line summary for the job: how many nodes did not make it, and the first reason.
    auto counts = model::count_states(rec.nodes);
    auto bad = counts.total - counts.of(model::node_update_state::succeeded);
    rec.error_message = std::to_string(bad) + " of " + std::to_string(counts.total)
                        + " nodes did not succeed";
    for (auto& n : rec.nodes)
      if (n.state != model::node_update_state::succeeded) {
        rec.error_message += "; " + n.node_id + " " + to_string(n.state)
                             + (n.error_message.empty() ? "" : ": " + n.error_message);
        break;
      }
  }
  write_job_state(r, now);
}

void write_job_state(job_round& r, model::millis now) {
  auto& rec = r.next;
  rec.updated_at = now;
  r.batch.ops.emplace_back(
    put_job_status{rec.job_id, rec.status, now, rec.error_message, rec.campaign});
}

/// How long a node's attempt may take, counted from its start (trigger or
/// retry). `node_timeout_seconds` says it outright. Otherwise a job's
/// timeout_seconds bounds each install on the agent, which then reports
/// failed itself; the server allows for the download and the report on top
/// of it (twice the time plus 10 s) so the agent's reason wins. Jobs without
/// either get --job-timeout.
model::millis timeout_ms(const job_state& st) {
  auto& spec = st.record.spec;
  if (spec.node_timeout_seconds > 0)
    return static_cast<model::millis>(spec.node_timeout_seconds) * 1000;
  if (spec.timeout_seconds > 0)
    return (2 * static_cast<model::millis>(spec.timeout_seconds) + 10) * 1000;
  return static_cast<model::millis>(st.cfg.default_timeout.count()) * 1000;
}

model::millis node_due(const job_state& st, const model::node_job_state& n) {
  if (n.started_at == 0)
    return std::numeric_limits<model::millis>::max();  // not started: its wave has not come
  return n.started_at + timeout_ms(st);
}

void arm_deadline(self_ptr self) {
  auto& st = self->state;
  auto s = st.record.status;
  if (st.deadline_armed || st.deleted
      || (s != model::job_status::in_progress && s != model::job_status::cancelled))
    return;
  auto earliest = std::numeric_limits<model::millis>::max();
  for (auto& n : st.record.nodes)
    if (!model::is_terminal(n.state))
      earliest = std::min(earliest, node_due(st, n));
  if (earliest == std::numeric_limits<model::millis>::max())
    return;
  st.deadline_armed = true;
  st.armed_for = earliest;
  auto delay = std::max<model::millis>(earliest - now_millis(), 1);
  self->delayed_send(self, std::chrono::milliseconds(delay), atom::deadline::value);
}

/// Tells the transport that this job's observable representations changed,
/// and the supervisor first, for /updates/changes (its note is in the
/// supervisor's mailbox before the transport can ask it for a copy).
void publish(self_ptr self) {
  auto& st = self->state;
  if (st.supervisor)
    self->send(st.supervisor, atom::changed::value, st.record.job_id);
  self->send(st.transport, atom::changed::value,
             resource{resource_kind::job_status, st.record.job_id}, urgency::control);
  self->send(st.transport, atom::changed::value, resource{resource_kind::updates, {}},
             urgency::control);
}

void notify_node(self_ptr self, const model::node_job_state& n, const std::string& ip,
                 uint16_t port, bool cancel, bool force) {
  auto& st = self->state;
  model::update_notification note;
  note.job_id = st.record.job_id;
  note.node_id = n.node_id;  // the ids only: the agent fetches the spec itself
  note.attempt = n.attempt;
  note.cancel = cancel;
  note.force = force;
  note.name = st.record.spec.name;  // hints only
  note.version = st.record.spec.version;
  self->send(st.transport, atom::notify::value, caf::actor_cast<job_actor>(self), ip, port,
             std::move(note));
}

void with_targets(self_ptr self, std::vector<std::string> nodes,
                  std::function<bool(const model::node_job_state&)> keep,
                  std::function<void(const job_target&, const model::node_job_state&)> then) {
  if (nodes.empty())
    return;
  auto& st = self->state;
  self->request(st.registry, std::chrono::seconds(30), atom::resolve::value, std::move(nodes))
    .then(
      [self, keep, then](std::vector<job_target>& targets) {
        for (auto& t : targets)
          if (auto* n = find_node(self->state.record, t.node_id); n && keep(*n))
            then(t, *n);
      },
      [self](caf::error& err) {
        CF_WARN("job", "job ", self->state.record.job_id,
                ": cannot resolve its nodes: ", caf::to_string(err));
      });
}

void send_cancels(self_ptr self, bool force) {
  std::vector<std::string> open;
  for (auto& n : self->state.record.nodes)
    if (!model::is_terminal(n.state) && n.started_at > 0)
      open.push_back(n.node_id);
  if (open.empty())
    return;
  CF_INFO("job", "job ", self->state.record.job_id, ": telling ", open.size(),
          " nodes to cancel", force ? " (force: running installs are stopped)" : "");
  with_targets(
    self, std::move(open), [](const model::node_job_state& n) { return !model::is_terminal(n.state); },
    [self, force](const job_target& t, const model::node_job_state& n) {
      notify_node(self, n, t.ip_address, t.port, true, force);
    });
}

// -- rounds ---------------------------------------------------------------------------

void end_round(self_ptr self) {
  self->state.busy = false;
  next_round(self);
}

namespace {

/// The round is durable (or had nothing to write): it becomes the record.
void apply_round(self_ptr self, job_round& r) {
  auto& st = self->state;
  st.record = std::move(r.next);
  st.summary.clear();
  st.deleted = r.deleted;
  if (r.publish && !st.deleted)
    publish(self);
  for (auto& f : r.durable)
    f();
  arm_deadline(self);
  end_round(self);
  schedule(self);
}

}  // namespace

void commit_round(self_ptr self, std::shared_ptr<job_round> r) {
  auto& st = self->state;
  st.busy = true;
  if (r->batch.ops.empty())
    return apply_round(self, *r);  // refusals only, or nothing left to do
  auto batch = std::move(r->batch);
  self->request(st.persistence, caf::infinite, atom::write::value, std::move(batch))
    .then([self, r](atom::ok) { apply_round(self, *r); },
          [self, r](caf::error& err) {
            CF_WARN("job", "job ", self->state.record.job_id,
                    ": changes not committed, nothing changed: ", caf::to_string(err));
            for (auto& f : r->failed)
              f(err);
            end_round(self);
            arm_wake(self, now_millis() + 1000);  // the campaign tries again
          });
}

void next_round(self_ptr self) {
  auto& st = self->state;
  if (st.busy || st.queue.empty())
    return;
  if (st.queue.front().start) {
    auto start = std::move(st.queue.front().start);
    st.queue.pop_front();
    st.busy = true;
    start(self);
    return;
  }
  auto r = std::make_shared<job_round>();
  r->next = st.record;
  r->deleted = st.deleted;
  while (!st.queue.empty() && !st.queue.front().start) {
    auto plan = std::move(st.queue.front().plan);
    st.queue.pop_front();
    plan(self, *r);
  }
  commit_round(self, std::move(r));
}

void submit(self_ptr self, change plan) {
  self->state.queue.push_back({std::move(plan), {}});
  next_round(self);
}

/// The node deadlines: nodes whose attempt outlived its timeout time out.
/// Tried again shortly when the commit fails.
void plan_deadline(self_ptr self, job_round& r, model::millis due_by) {
  auto& rec = r.next;
  auto s = rec.status;
  if (r.deleted || (s != model::job_status::in_progress && s != model::job_status::cancelled))
    return;
  auto now = now_millis();
  auto limit = timeout_ms(self->state) / 1000;
  due_by = std::max(now, due_by);
  for (auto& n : rec.nodes)
    if (!model::is_terminal(n.state) && node_due(self->state, n) <= due_by) {
      n.state = model::node_update_state::timed_out;
      n.error_message = "no final report within " + std::to_string(limit)
                        + " s of the start of attempt " + std::to_string(n.attempt);
      n.updated_at = now;
      r.batch.ops.emplace_back(put_node_state{rec.job_id, n});
      r.publish = true;
    }
  refresh_status(r, now);
  r.failed.push_back([self](const caf::error&) {
    auto& st = self->state;
    if (st.deadline_armed)
      return;
    st.deadline_armed = true;
    self->delayed_send(self, deadline_retry, atom::deadline::value);
  });
}

}  // namespace coapfleet::server::job_detail
