// Commit, then change: a job (and the supervisor creating one) changes its
// state, answers and publishes only once the write behind it is durable. A
// commit is made to fail by another connection holding the write lock.
#include "actor_fixture.hpp"

using namespace coapfleet;
using namespace coapfleet::actor_test;

namespace {

bool is_internal(const caf::error& err) {
  return err.category() == api_category && err.code() == static_cast<uint8_t>(api_errc::internal);
}

}  // namespace

TEST_CASE_FIXTURE(fixture, "an install whose commit fails changes nothing and can be retried") {
  enroll("node-a", "127.1.0.1");
  enroll("node-b", "127.1.0.2");
  auto job = create(script_job());
  wire->clear();
  auto lock = std::make_unique<db_lock>(dir / "fleet.db");
  auto err = ask_error<model::job_record>(jobs, atom::install::value, job.job_id, op);
  CHECK(is_internal(err));
  // In memory, in the store, on the wire: still created, nobody notified.
  auto st = status(job.job_id);
  CHECK(st.status == model::job_status::created);
  CHECK(st.nodes.empty());
  auto db = stored();
  REQUIRE(db.jobs.size() == 1);
  CHECK(db.jobs[0].status == model::job_status::created);
  CHECK(db.jobs[0].nodes.empty());
  CHECK(wire->notes.empty());
  CHECK(wire->changed.empty());
  // Once the database takes writes again, the same install works.
  lock.reset();
  auto triggered = ask<model::job_record>(jobs, atom::install::value, job.job_id, op);
  CHECK(triggered.status == model::job_status::in_progress);
  CHECK(triggered.nodes.size() == 2);
  CHECK(wire->notes.size() == 2);
  CHECK(wire->saw_changed("updates/" + job.job_id + "/status"));
  CHECK(stored().jobs[0].status == model::job_status::in_progress);
}

TEST_CASE_FIXTURE(fixture, "a report whose commit fails changes nothing and can be retried") {
  enroll("node-a");
  auto job = create(script_job());
  ask<model::job_record>(jobs, atom::install::value, job.job_id, op);
  wire->clear();
  auto before = status(job.job_id);
  auto lock = std::make_unique<db_lock>(dir / "fleet.db");
  auto r = report(job.job_id, "node-a", model::node_update_state::succeeded);
  auto err = ask_error<atom::ok>(jobs, atom::report::value, r, op);
  CHECK(is_internal(err));
  auto st = status(job.job_id);
  CHECK(same_job(st, before));
  CHECK(st.nodes[0].state == model::node_update_state::pending);
  CHECK(st.status == model::job_status::in_progress);
  CHECK(same_job(stored().jobs[0], before));
  CHECK(wire->changed.empty());
  lock.reset();
  ask<atom::ok>(jobs, atom::report::value, r, op);
  st = status(job.job_id);
  CHECK(st.nodes[0].state == model::node_update_state::succeeded);
  CHECK(st.status == model::job_status::completed);
  CHECK(same_job(stored().jobs[0], st));
  CHECK(wire->saw_changed("updates/" + job.job_id + "/status"));
}

TEST_CASE_FIXTURE(fixture, "a cancel whose commit fails changes nothing and can be retried") {
  enroll("node-a");
  auto job = create(script_job());
  ask<model::job_record>(jobs, atom::install::value, job.job_id, op);
  wire->clear();
  auto before = status(job.job_id);
  auto lock = std::make_unique<db_lock>(dir / "fleet.db");
  auto err = ask_error<model::job_record>(jobs, atom::cancel::value, job.job_id, false, op);
  CHECK(is_internal(err));
  CHECK(same_job(status(job.job_id), before));
  CHECK(same_job(stored().jobs[0], before));
  CHECK(wire->changed.empty());
  lock.reset();
  auto cancelled = ask<model::job_record>(jobs, atom::cancel::value, job.job_id, false, op);
  CHECK(cancelled.status == model::job_status::cancelled);
  // The node is cancelled on its agent's word only; its agent is told.
  CHECK(cancelled.nodes[0].state == before.nodes[0].state);
  CHECK(same_job(stored().jobs[0], cancelled));
  CHECK(wire->saw_changed("updates/" + job.job_id + "/status"));
  REQUIRE(!wire->notes.empty());
  CHECK(std::get<3>(wire->notes.back()).cancel);
}

TEST_CASE_FIXTURE(fixture, "a failed create leaves no job behind") {
  auto lock = std::make_unique<db_lock>(dir / "fleet.db");
  auto err = ask_error<model::job_record>(jobs, atom::create::value, script_job(), op);
  CHECK(is_internal(err));
  CHECK(ask<std::vector<model::job_record>>(jobs, atom::list::value).empty());
  CHECK(wire->job_routes.empty());
  CHECK_FALSE(wire->saw_changed("updates"));
  lock.reset();
  CHECK(stored().jobs.empty());
  auto job = create(script_job());
  CHECK(job.status == model::job_status::created);
  CHECK(wire->job_routes.size() == 1);
  CHECK(ask<std::vector<model::job_record>>(jobs, atom::list::value).size() == 1);
}

TEST_CASE_FIXTURE(fixture, "requests during an install's commit see the durable state, then wait") {
  enroll("node-a");
  auto job = create(script_job());
  wire->clear();
  auto install = ask_later<model::job_record>(jobs, atom::install::value, job.job_id, op);
  run_all_but_persistence();  // the install's write is in flight
  CHECK_FALSE(install->done);
  // A read answers at once, with what the store holds ...
  auto get = ask_later<model::job_record>(jobs, atom::status::value, job.job_id);
  // ... a second install and a report wait for the first install's outcome.
  auto again = ask_later<model::job_record>(jobs, atom::install::value, job.job_id, op);
  auto step = ask_later<atom::ok>(jobs, atom::report::value,
                              report(job.job_id, "node-a", model::node_update_state::downloading),
                              op);
  run_all_but_persistence();
  REQUIRE(get->done);
  CHECK(get->value->status == model::job_status::created);
  CHECK_FALSE(again->done);
  CHECK_FALSE(step->done);
  CHECK(wire->notes.empty());
  CHECK(wire->changed.empty());
  sched->run();
  REQUIRE(install->done);
  REQUIRE(install->value);
  CHECK(install->value->status == model::job_status::in_progress);
  REQUIRE(again->done);
  CHECK(again->error.code() == static_cast<uint8_t>(api_errc::bad_request));
  REQUIRE(step->done);
  CHECK(step->value.has_value());
  CHECK(wire->notes.size() == 1);
  auto st = status(job.job_id);
  CHECK(st.nodes[0].state == model::node_update_state::downloading);
  CHECK(same_job(stored().jobs[0], st));
}

TEST_CASE_FIXTURE(fixture, "a report queued behind a failing commit is judged on durable state") {
  enroll("node-a");
  auto job = create(script_job());
  ask<model::job_record>(jobs, atom::install::value, job.job_id, op);
  auto lock = std::make_unique<db_lock>(dir / "fleet.db");
  auto first = ask_later<atom::ok>(jobs, atom::report::value,
                               report(job.job_id, "node-a", model::node_update_state::failed), op);
  run_all_but_persistence();  // node-a failed: being committed
  // Had the job taken "failed" before it was durable, this would be refused.
  auto second = ask_later<atom::ok>(jobs, atom::report::value,
                                report(job.job_id, "node-a", model::node_update_state::downloading),
                                op);
  run_all_but_persistence();
  CHECK_FALSE(second->done);
  run_all_but(wire->job(job.job_id));  // the commit fails; the job has not heard yet
  lock.reset();
  sched->run();
  REQUIRE(first->done);
  CHECK(is_internal(first->error));
  REQUIRE(second->done);
  CHECK(second->value.has_value());
  auto st = status(job.job_id);
  CHECK(st.nodes[0].state == model::node_update_state::downloading);
  CHECK(st.status == model::job_status::in_progress);
  CHECK(same_job(stored().jobs[0], st));
}

TEST_CASE_FIXTURE(fixture, "a deadline whose commit fails is tried again") {
  enroll("node-a");
  auto spec = script_job();
  spec.timeout_seconds = 5;
  auto job = create(spec);
  ask<model::job_record>(jobs, atom::install::value, job.job_id, op);
  wire->clear();
  auto lock = std::make_unique<db_lock>(dir / "fleet.db");
  sched->advance_time(21s);  // 2 x timeout_seconds + 10 s
  sched->run();
  CHECK(status(job.job_id).status == model::job_status::in_progress);
  CHECK(wire->changed.empty());
  lock.reset();
  sched->advance_time(2s);
  sched->run();
  auto st = status(job.job_id);
  CHECK(st.nodes[0].state == model::node_update_state::timed_out);
  CHECK(st.status == model::job_status::failed);
  CHECK(same_job(stored().jobs[0], st));
}

TEST_CASE_FIXTURE(fixture, "a delete waits for a running change and is judged after it") {
  enroll("node-a");
  auto job = create(script_job());
  auto install = ask_later<model::job_record>(jobs, atom::install::value, job.job_id, op);
  run_all_but_persistence();
  auto del = ask_later<atom::ok>(jobs, atom::remove::value, job.job_id, op);
  sched->run();
  REQUIRE(install->done);
  CHECK(install->value);
  // The install was durable first: the job is running and cannot go.
  REQUIRE(del->done);
  CHECK(del->error.code() == static_cast<uint8_t>(api_errc::conflict));
  CHECK(stored().jobs.size() == 1);
  ask<model::job_record>(jobs, atom::cancel::value, job.job_id, false, op);
  // Not every node confirmed the cancel: the job stays.
  auto early = ask_error<atom::ok>(jobs, atom::remove::value, job.job_id, op);
  CHECK(early.code() == static_cast<uint8_t>(api_errc::conflict));
  model::update_report r;
  r.job_id = job.job_id;
  r.node_id = "node-a";
  r.state = model::node_update_state::cancelled;
  ask<atom::ok>(jobs, atom::report::value, r, op);
  ask<atom::ok>(jobs, atom::remove::value, job.job_id, op);
  CHECK(stored().jobs.empty());
  CHECK(wire->forgotten == std::vector<std::string>{job.job_id});
  auto err = ask_error<model::job_record>(jobs, atom::status::value, job.job_id);
  CHECK(err.code() == static_cast<uint8_t>(api_errc::not_found));
}
