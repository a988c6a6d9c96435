// The job actor's state and its steps (job.cpp: the actor; job_rounds.cpp:
// rounds, deadlines, notifications; job_changes.cpp: the changes a round
// plans). Internal to the job actor.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "actors/server/job.hpp"

namespace coapfleet::server::job_detail {

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

/// A queued change; a `start` (install, retry) runs by itself: it resolves
/// its nodes first and is a round of its own.
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
  /// The node deadline the timer is armed for: when it fires, the nodes due
  /// by then time out (the timer's word is the clock's).
  model::millis armed_for = 0;
  model::millis wake_at = 0;  ///< the campaign's timer is armed for then (0: not armed)
  bool planning = false;      ///< a campaign change is queued (one at a time)
  std::string summary;  ///< the record as GET /updates lists it ("": not encoded since it changed)
};

// -- job_rounds.cpp ---------------------------------------------------------------------

model::node_job_state* find_node(model::job_record& rec, const std::string& id);
caf::error unknown_job(const std::string& id);

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
void refresh_status(job_round& r, model::millis now);
/// Writes the job's own state (status, error, campaign) as the round's copy has it.
void write_job_state(job_round& r, model::millis now);
/// How long a node's attempt may take on the server's clock (see job_rounds.cpp).
model::millis timeout_ms(const job_state& st);
/// When a node that has not finished times out.
model::millis node_due(const job_state& st, const model::node_job_state& n);
/// Arms the timer of the earliest node deadline of a running (or cancelled,
/// unconfirmed) job, unless armed.
void arm_deadline(self_ptr self);
/// Observers and the supervisor hear that the job changed.
void publish(self_ptr self);
/// Sends POST /updates/available to a node's agent: an install, or a cancel.
void notify_node(self_ptr self, const model::node_job_state& n, const std::string& ip,
                 uint16_t port, bool cancel = false, bool force = false);
/// Resolves `nodes` (ids) through the registry and calls `then` with the
/// targets still in the state `keep` accepts (judged on the durable record).
void with_targets(self_ptr self, std::vector<std::string> nodes,
                  std::function<bool(const model::node_job_state&)> keep,
                  std::function<void(const job_target&, const model::node_job_state&)> then);
/// Tells every node that has not finished that the job is cancelled.
void send_cancels(self_ptr self, bool force);

void end_round(self_ptr self);
void commit_round(self_ptr self, std::shared_ptr<job_round> r);
void next_round(self_ptr self);
void submit(self_ptr self, change plan);

// -- job_campaign.cpp -------------------------------------------------------------------

/// A node starts attempt `attempt` now: pending (or skipped when its node is
/// offline and the job skips those).
void start_attempt(const job_state& st, model::node_job_state& n, uint32_t attempt,
                   model::node_status status, model::millis now);
/// Does on the round's copy what the campaign's plan says now: its state,
/// automatic retries, and the starts of nodes found in `resolved` (starts
/// wait when it is null); the started nodes are notified once durable.
void apply_plan(self_ptr self, job_round& r, const std::vector<job_target>* resolved,
                model::millis now, const std::vector<std::string>* requested = nullptr);
/// The campaign's timer for `at` (kept when an earlier one is armed).
void arm_wake(self_ptr self, model::millis at);
/// Asks the plan what to do on the durable record and queues it; `at`: the
/// time a timer was armed for (due now whatever the clock says), else 0.
void schedule(self_ptr self, model::millis at = 0);
/// The campaign's timer armed for `at` (soak end, window, automatic retry).
void on_wake(self_ptr self, model::millis at);
/// A node registered or came back online: a node this running job skipped
/// (offline when its attempt started) gets another attempt; a dynamic
/// campaign that is open takes a node its targets name (or "all") into its
/// next wave.
void plan_joiner(self_ptr self, job_round& r, const job_target& t);
/// pause, resume (a running campaign), close (a dynamic one).
void plan_campaign_action(self_ptr self, job_round& r, const std::string& action,
                          const peer& from, caf::typed_response_promise<model::job_record> rp);

// -- job_changes.cpp --------------------------------------------------------------------

void start_install(self_ptr self, const peer& from,
                   caf::typed_response_promise<model::job_record> rp);
void plan_retry(self_ptr self, job_round& r, const peer& from,
                caf::typed_response_promise<model::job_record> rp);
void plan_report(self_ptr self, job_round& r, model::update_report rep,
                 caf::typed_response_promise<atom::ok> rp);
void plan_cancel(self_ptr self, job_round& r, bool force, const peer& from,
                 caf::typed_response_promise<model::job_record> rp);
void plan_remove(self_ptr self, job_round& r, caf::typed_response_promise<atom::ok> rp);
void plan_notified(self_ptr self, job_round& r, const std::string& node_id, bool ok,
                   const std::string& detail);
void plan_cancel_sent(self_ptr self, job_round& r, const std::string& node_id, bool ok,
                      const std::string& detail);
/// Times out the nodes due by `due_by` (the deadline the timer was armed for).
void plan_deadline(self_ptr self, job_round& r, model::millis due_by);

}  // namespace coapfleet::server::job_detail
