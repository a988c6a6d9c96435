#include "actors/server/job.hpp"

#include <algorithm>
#include <deque>
#include <functional>
#include <memory>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "model/rules.hpp"

namespace coapfleet::server {

namespace {

// Commit, then change. The actor's record is what the store holds, never
// ahead of it, so `get` may answer it at any time. A request that changes the
// job is planned on a copy of the record (a round); the round is written in
// one batch, and only once that write is durable does the copy become the
// record, do the requests get their answers, observers hear of it and agents
// get notified. When the commit fails the record stays as it was and every
// request of the round gets the error, so a retry works.
//
// One round at a time. Changes that arrive while a round is written (or while
// an install resolves its targets) wait in a queue, in arrival order, and
// together form the next round: nothing is judged against a state that is not
// durable yet, and a busy job still commits many reports at once.
//
//   idle ──change──► plan the queued changes on a copy ──► write ─┬─ ok ──► the copy is the
//    ▲                  (an install: resolve its targets first,   │         record; answer,
//    │                   alone in its round)                      │         publish, notify
//    │                                                            └─ error ► answer the error
//    └──────────── queue empty ◄──── next round if changes queued ◄──────────────┘

/// Changes planned together and written in one batch.
struct job_round {
  model::job_record next;  ///< the record as it will be once the batch is durable
  bool deleted = false;    ///< the job is dropped from the store by this round (or was)
  write_batch batch;
  bool publish = false;    ///< observers hear of it once durable
  std::vector<std::function<void()>> durable;                   ///< answers, notifications
  std::vector<std::function<void(const caf::error&)>> failed;  ///< answers when not committed
};

struct job_state;
using self_ptr = job_actor::stateful_pointer<job_state>;

/// A change: validates against the round's copy, changes it, adds its writes
/// and what it does once they are durable (or not).
using change = std::function<void(self_ptr, job_round&)>;

/// A queued change; an install `start`s by itself: it resolves its targets
/// first and is a round of its own.
struct queued_change {
  change plan;
  std::function<void(self_ptr)> start;
};

struct job_state {
  static inline const char* name = "job";
  model::job_record record;  ///< durable: what the store holds
  job_config cfg;
  registry_actor registry;
  persistence_actor persistence;
  transport_actor transport;
  job_supervisor_actor supervisor;  ///< hears of every change (for /updates/changes)
  bool busy = false;                ///< a round is being resolved or written
  std::deque<queued_change> queue;  ///< changes for the next round, in arrival order
  bool deleted = false;             ///< dropped from the store: requests get not_found
  bool deadline_armed = false;
  std::string summary;  ///< the record as GET /updates lists it ("": not encoded since it changed)
};

/// How long a deadline whose commit failed waits before it is tried again.
constexpr auto deadline_retry = std::chrono::seconds(1);

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

/// Answers `rp` with `value()` once the round is durable, with the commit's
/// error otherwise.
template <class T, class F>
void answer(job_round& r, caf::typed_response_promise<T> rp, F value) {
  r.durable.push_back([rp, value]() mutable { rp.deliver(value()); });
  r.failed.push_back([rp](const caf::error& err) mutable { rp.deliver(err); });
}

/// A request refused on the round's copy. When the round is not committed,
/// the state it was judged on did not come to be: it gets the commit's error.
template <class T>
void refuse(job_round& r, caf::typed_response_promise<T> rp, caf::error why) {
  r.durable.push_back([rp, why]() mutable { rp.deliver(why); });
  r.failed.push_back([rp](const caf::error& err) mutable { rp.deliver(err); });
}

/// Re-derives the job status on the round's copy; adds a status write when it changed.
void refresh_status(job_round& r, model::millis now) {
  auto& rec = r.next;
  auto next = model::derive_job_status(rec.status, model::count_states(rec.nodes));
  if (next == rec.status)
    return;
  r.durable.push_back([id = rec.job_id, next, was = rec.status] {
    CF_INFO("job", "job ", id, " is ", to_string(next), " (was ", to_string(was), ")");
  });
  rec.status = next;
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
  rec.updated_at = now;
  r.batch.ops.emplace_back(put_job_status{rec.job_id, rec.status, now, rec.error_message});
}

/// How long after the trigger the server waits for a node's final report.
/// A job's own timeout_seconds bounds each install on the agent, which then
/// reports failed itself; the server allows for the download and the report
/// on top of it (twice the time plus 10 s) so the agent's reason wins.
/// Jobs without one get --job-timeout.
model::millis timeout_ms(const job_state& st) {
  auto t = st.record.spec.timeout_seconds;
  if (t > 0)
    return (2 * static_cast<model::millis>(t) + 10) * 1000;
  return static_cast<model::millis>(st.cfg.default_timeout.count()) * 1000;
}

void arm_deadline(self_ptr self, model::millis triggered_at) {
  auto& st = self->state;
  if (st.deadline_armed || st.record.status != model::job_status::in_progress)
    return;
  st.deadline_armed = true;
  auto delay = std::max<model::millis>(triggered_at + timeout_ms(st) - now_millis(), 1);
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
                 uint16_t port) {
  auto& st = self->state;
  model::update_notification note;
  note.job_id = st.record.job_id;
  note.node_id = n.node_id;  // the ids only: the agent fetches the spec itself
  self->send(st.transport, atom::notify::value, caf::actor_cast<job_actor>(self), ip, port,
             std::move(note));
}

void next_round(self_ptr self);

void end_round(self_ptr self) {
  self->state.busy = false;
  next_round(self);
}

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
  end_round(self);
}

/// Writes a round; see the machine above.
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

// -- the changes ------------------------------------------------------------------------

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
  self->request(st.registry, std::chrono::seconds(30), atom::resolve::value,
                st.record.spec.target_nodes)
    .then(
      [self, rp, from](std::vector<job_target>& targets) mutable {
        auto& st = self->state;
        if (targets.empty()) {
          rp.deliver(make_api_error(api_errc::bad_request,
                                    "no registered nodes match target_nodes", "target_nodes"));
          return end_round(self);
        }
        auto now = now_millis();
        auto r = std::make_shared<job_round>();
        r->next = st.record;
        auto& rec = r->next;
        rec.nodes.clear();
        for (auto& t : targets) {
          model::node_job_state n;
          n.node_id = t.node_id;
          n.updated_at = now;
          if (st.cfg.skip_offline && t.status == model::node_status::offline) {
            n.state = model::node_update_state::skipped;
            n.error_message = "node was offline when the job was triggered";
          }
          r->batch.ops.emplace_back(put_node_state{rec.job_id, n});
          rec.nodes.push_back(std::move(n));
        }
        rec.status = model::job_status::in_progress;
        rec.updated_at = now;
        r->batch.ops.emplace_back(
          put_job_status{rec.job_id, rec.status, now, rec.error_message});
        refresh_status(*r, now);  // e.g. every target skipped
        r->publish = true;
        r->durable.push_back([self, rp, from, targets = std::move(targets)]() mutable {
          auto& st = self->state;
          CF_INFO("job", "job ", st.record.job_id, " triggered by ", from.address, ":",
                  from.port, " targets=", targets.size());
          rp.deliver(st.record);
          for (auto& t : targets)
            if (auto* n = find_node(st.record, t.node_id);
                n && n->state == model::node_update_state::pending)
              notify_node(self, *n, t.ip_address, t.port);
          arm_deadline(self, st.record.updated_at);
        });
        r->failed.push_back([rp](const caf::error& err) mutable { rp.deliver(err); });
        commit_round(self, std::move(r));
      },
      [self, rp](caf::error& err) mutable {
        rp.deliver(std::move(err));
        end_round(self);
      });
}

void plan_report(self_ptr, job_round& r, const model::update_report& rep,
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
  auto why = model::check_transition(n->state, rep.state);
  if (!why.empty())
    return refuse(r, rp,
                  make_api_error(api_errc::bad_request, why, "status", "current_status",
                                 to_string(n->state)));
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
  else if (rep.state == model::node_update_state::failed && n->result <= 1)
    n->result = static_cast<int32_t>(model::update_result::update_failed);
  if (!rep.error_message.empty() || model::is_terminal(rep.state))
    n->error_message = rep.error_message;
  n->updated_at = now;
  r.batch.ops.emplace_back(put_node_state{rec.job_id, *n});
  refresh_status(r, now);
  r.publish = true;
  answer(r, rp, [] { return atom::ok::value; });
}

void plan_cancel(self_ptr self, job_round& r, const peer& from,
                 caf::typed_response_promise<model::job_record> rp) {
  auto& rec = r.next;
  if (r.deleted)
    return refuse(r, rp, unknown_job(rec.job_id));
  auto s = rec.status;
  if (s != model::job_status::created && s != model::job_status::in_progress)
    return refuse(r, rp,
                  make_api_error(api_errc::bad_request,
                                 "job " + rec.job_id + " has already finished", "job_id",
                                 "status", to_string(s)));
  auto now = now_millis();
  for (auto& n : rec.nodes)
    if (!model::is_terminal(n.state)) {
      n.state = model::node_update_state::cancelled;
      n.result = static_cast<int32_t>(model::update_result::cancelled);
      n.error_message = "cancelled by operator";
      n.updated_at = now;
      r.batch.ops.emplace_back(put_node_state{rec.job_id, n});
    }
  rec.status = model::job_status::cancelled;
  rec.updated_at = now;
  r.batch.ops.emplace_back(put_job_status{rec.job_id, rec.status, now, rec.error_message});
  r.publish = true;
  r.durable.push_back([id = rec.job_id, who = from.address] {
    CF_INFO("job", "job ", id, " cancelled by ", who);
  });
  answer(r, rp, [self] { return self->state.record; });
}

void plan_remove(self_ptr, job_round& r, caf::typed_response_promise<atom::ok> rp) {
  auto& rec = r.next;
  if (r.deleted)
    return refuse(r, rp, unknown_job(rec.job_id));
  if (rec.status == model::job_status::in_progress)
    return refuse(r, rp,
                  make_api_error(api_errc::bad_request,
                                 "job " + rec.job_id + " is running; cancel it first", "job_id",
                                 "status", to_string(rec.status)));
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

/// The install deadline: nodes not finished time out. Tried again shortly
/// when the commit fails.
void plan_deadline(self_ptr self, job_round& r) {
  auto& rec = r.next;
  if (r.deleted || rec.status != model::job_status::in_progress)
    return;
  auto now = now_millis();
  auto limit = timeout_ms(self->state) / 1000;
  for (auto& n : rec.nodes)
    if (!model::is_terminal(n.state)) {
      n.state = model::node_update_state::timed_out;
      n.error_message =
        "no final report within " + std::to_string(limit) + " s of the trigger";
      n.updated_at = now;
      r.batch.ops.emplace_back(put_node_state{rec.job_id, n});
    }
  refresh_status(r, now);
  r.publish = true;
  r.failed.push_back([self](const caf::error&) {
    auto& st = self->state;
    if (st.deadline_armed)
      return;
    st.deadline_armed = true;
    self->delayed_send(self, deadline_retry, atom::deadline::value);
  });
}

}  // namespace

job_actor spawn_job(caf::actor_system& sys, model::job_record record, job_config cfg,
                    registry_actor registry, persistence_actor persistence,
                    transport_actor transport, job_supervisor_actor supervisor) {
  auto fn = [](self_ptr self, model::job_record record, job_config cfg, registry_actor registry,
               persistence_actor persistence, transport_actor transport,
               job_supervisor_actor supervisor) -> job_actor::behavior_type {
    auto& st = self->state;
    st.record = std::move(record);
    std::sort(st.record.nodes.begin(), st.record.nodes.end(),
              [](const auto& a, const auto& b) { return a.node_id < b.node_id; });
    st.cfg = cfg;
    st.registry = std::move(registry);
    st.persistence = std::move(persistence);
    st.transport = std::move(transport);
    st.supervisor = std::move(supervisor);
    return {
      [self](atom::install, const peer& from) -> caf::result<model::job_record> {
        auto rp = self->make_response_promise<model::job_record>();
        self->state.queue.push_back(
          {{}, [from, rp](self_ptr self) { start_install(self, from, rp); }});
        next_round(self);
        return rp;
      },
      [self](atom::get) -> caf::result<model::job_record> {
        if (self->state.deleted)
          return unknown_job(self->state.record.job_id);
        return self->state.record;
      },
      [self](atom::listing) -> caf::result<std::string> {
        auto& st = self->state;
        if (st.deleted)
          return unknown_job(st.record.job_id);
        if (st.summary.empty())
          st.summary = model::encode_job_summary(st.record);
        return st.summary;
      },
      [self](atom::report, model::update_report& r) -> caf::result<atom::ok> {
        auto rp = self->make_response_promise<atom::ok>();
        submit(self, [r = std::move(r), rp](self_ptr self, job_round& rd) {
          plan_report(self, rd, r, rp);
        });
        return rp;
      },
      [self](atom::cancel, const peer& from) -> caf::result<model::job_record> {
        auto rp = self->make_response_promise<model::job_record>();
        submit(self, [from, rp](self_ptr self, job_round& r) { plan_cancel(self, r, from, rp); });
        return rp;
      },
      [self](atom::remove, const peer&) -> caf::result<atom::ok> {
        auto rp = self->make_response_promise<atom::ok>();
        submit(self, [rp](self_ptr self, job_round& r) { plan_remove(self, r, rp); });
        return rp;
      },
      [self](atom::notified, std::string& node_id, bool ok, std::string& detail) {
        submit(self, [node_id = std::move(node_id), ok,
                      detail = std::move(detail)](self_ptr self, job_round& r) {
          plan_notified(self, r, node_id, ok, detail);
        });
      },
      [self](atom::deadline) {
        self->state.deadline_armed = false;
        submit(self, plan_deadline);
      },
      [self](atom::resume) {
        // After a (re)start: nodes still pending never got (or never
        // answered) their notification; ask the registry where they are now.
        // This only reads the durable record: it changes nothing.
        auto& st = self->state;
        if (st.deleted || st.record.status != model::job_status::in_progress)
          return;
        arm_deadline(self, st.record.updated_at);
        std::vector<std::string> pending;
        for (auto& n : st.record.nodes)
          if (n.state == model::node_update_state::pending)
            pending.push_back(n.node_id);
        if (pending.empty())
          return;
        CF_INFO("job", "job ", st.record.job_id, " resumed: re-notifying ", pending.size(),
                " nodes");
        self->request(st.registry, std::chrono::seconds(30), atom::resolve::value, pending)
          .then(
            [self](std::vector<job_target>& targets) {
              for (auto& t : targets)
                if (auto* n = find_node(self->state.record, t.node_id);
                    n && n->state == model::node_update_state::pending)
                  notify_node(self, *n, t.ip_address, t.port);
            },
            [self](caf::error& err) {
              CF_WARN("job", "job ", self->state.record.job_id,
                      ": cannot resolve pending nodes: ", caf::to_string(err));
            });
      },
    };
  };
  return sys.spawn(fn, std::move(record), cfg, std::move(registry), std::move(persistence),
                   std::move(transport), std::move(supervisor));
}

}  // namespace coapfleet::server
