// Supervision: the registry and the job supervisor monitor their children and
// restart a dead one (a node actor reads its record from the store when it is
// read), routing the transport to the new actor; a child that keeps dying
// stays down and its requests answer 5.00.
// The persistence actor commits what is pending when it is stopped.
#include "actor_fixture.hpp"

#include "model/ownership.hpp"

using namespace coapfleet;
using namespace coapfleet::actor_test;

namespace {

model::health_report health(const std::string& node, double cpu) {
  model::health_report h;
  h.node_id = node;
  h.cpu_percent = cpu;
  return h;
}

}  // namespace

TEST_CASE_FIXTURE(fixture, "a node actor that dies is restarted and routed again; its record is the store's") {
  enroll("node-1", "127.1.0.1");
  enroll("node-2", "127.1.0.2");
  CHECK(report("node-1", 1) == 204);
  CHECK(report("node-2", 1) == 204);
  auto first = wire->node("node-1");
  // Its latest health has reached the persistence actor but is not committed yet.
  CHECK(report("node-1", 42) == 204);
  caf::anon_send_exit(first, caf::exit_reason::kill);
  sched->run();
  // The registry lives on, with a new actor for node-1, and the transport knows it.
  CHECK(ask<uint32_t>(registry, atom::count::value) == 2);
  REQUIRE(wire->routes_of("node-1") == 2);
  auto second = wire->node("node-1");
  CHECK(second != first);
  CHECK(wire->active.at("node-1") == second);
  CHECK(wire->routes_of("node-2") == 1);
  auto rec = node("node-1");
  CHECK(rec.reg.ip_address == "127.1.0.1");
  REQUIRE(rec.has_health);
  CHECK(rec.health.cpu_percent == 42);
  // The next report is the new actor's.
  CHECK(report("node-1", 7) == 204);
  CHECK(node("node-1").health.cpu_percent == 7);
  CHECK(nodes().size() == 2);
}

TEST_CASE_FIXTURE(fixture, "a read of a restarted node waits for the store") {
  enroll("node-1");
  CHECK(report("node-1", 5) == 204);
  caf::anon_send_exit(wire->node("node-1"), caf::exit_reason::kill);
  sched->run();
  auto rec = ask_later<model::node_record>(registry, atom::get::value, std::string("node-1"));
  run_all_but_persistence();  // the new actor is reading node-1 from the store
  CHECK_FALSE(rec->done);
  sched->run();
  REQUIRE(rec->value);
  CHECK(rec->value->health.cpu_percent == 5);
}

TEST_CASE_FIXTURE(fixture, "a node actor that keeps dying stays down and answers 5.00") {
  enroll("node-1");
  enroll("node-2", "127.1.0.2");
  CHECK(report("node-1", 1) == 204);
  for (int i = 0; i < 4; ++i) {  // three restarts a minute are allowed
    caf::anon_send_exit(wire->node("node-1"), caf::exit_reason::kill);
    sched->run();
  }
  CHECK(wire->routes_of("node-1") == 4);  // the first and three restarts
  // The transport routes its reports to the registry, which refuses them.
  CHECK(wire->active.count("node-1") == 0);
  CHECK(report("node-1", 2) == 500);
  auto err = ask_error<model::node_record>(registry, atom::get::value, std::string("node-1"));
  CHECK(err.code() == static_cast<uint8_t>(api_errc::internal));
  auto ctx = error_context(err);
  REQUIRE(ctx.size() == 4);
  CHECK(ctx[0].find("node-1") != std::string::npos);
  CHECK(ctx[3] == "node-1");
  model::node_registration reg;
  reg.node_id = "node-1";
  reg.ip_address = "127.1.0.1";
  err = ask_error<registered>(registry, atom::enroll::value, reg, peer{});
  CHECK(err.code() == static_cast<uint8_t>(api_errc::internal));
  // Everything else goes on.
  CHECK(ask<uint32_t>(registry, atom::count::value) == 2);
  auto list = nodes();
  REQUIRE(list.size() == 1);
  CHECK(list[0].reg.node_id == "node-2");
  CHECK(enroll("node-3").created);
}

TEST_CASE_FIXTURE(fixture, "restarts are counted per minute") {
  enroll("node-1");
  CHECK(report("node-1", 1) == 204);
  for (int i = 0; i < 6; ++i) {
    caf::anon_send_exit(wire->node("node-1"), caf::exit_reason::kill);
    sched->run();
    shift_clock(30'000);  // two a minute stay within the limit
    CHECK(report("node-1", i) == 204);  // and it keeps talking (stays active)
  }
  CHECK(wire->routes_of("node-1") == 7);
  CHECK(nodes().size() == 1);
}

TEST_CASE_FIXTURE(fixture, "a job actor that dies is restarted with its durable state") {
  enroll("node-a", "127.1.0.1");
  enroll("node-b", "127.1.0.2");
  auto job = create(script_job());
  ask<model::job_record>(jobs, atom::install::value, job.job_id, op);
  ask<atom::ok>(jobs, atom::report::value,
                  report(job.job_id, "node-a", model::node_update_state::downloading), op);
  auto before = status(job.job_id);
  auto first = wire->job(job.job_id);
  wire->clear();
  caf::anon_send_exit(first, caf::exit_reason::kill);
  sched->run();
  REQUIRE(wire->job_routes.size() == 2);
  CHECK(wire->job(job.job_id) != first);
  auto after = status(job.job_id);
  CHECK(same_job(after, before));
  CHECK(same_job(after, stored().jobs[0]));
  // node-b's notification may have been answered to the dead actor: it goes out again.
  REQUIRE(wire->notes.size() == 1);
  CHECK(std::get<3>(wire->notes[0]).node_id == "node-b");
  CHECK(std::get<0>(wire->notes[0]) == wire->job(job.job_id));
  ask<atom::ok>(jobs, atom::report::value,
                  report(job.job_id, "node-a", model::node_update_state::succeeded), op);
  CHECK(status(job.job_id).nodes[0].state == model::node_update_state::succeeded);
  CHECK(ask<std::vector<model::job_record>>(jobs, atom::list::value).size() == 1);
}

TEST_CASE_FIXTURE(fixture, "a job that dies during a commit restarts with what the store took") {
  enroll("node-a");
  auto job = create(script_job());
  ask<model::job_record>(jobs, atom::install::value, job.job_id, op);
  auto step = ask_later<atom::ok>(jobs, atom::report::value,
                              report(job.job_id, "node-a", model::node_update_state::installing),
                              op);
  run_all_but_persistence();  // the report's write is in flight
  caf::anon_send_exit(wire->job(job.job_id), caf::exit_reason::kill);
  sched->run();
  // The requester never heard (the gateway's timeout answers it), but the
  // write was committed: the new actor has it.
  CHECK_FALSE(step->done);
  auto st = status(job.job_id);
  CHECK(st.nodes[0].state == model::node_update_state::installing);
  CHECK(same_job(st, stored().jobs[0]));
}

TEST_CASE_FIXTURE(fixture, "a job actor that keeps dying stays down and answers 5.00") {
  enroll("node-a");
  auto job = create(script_job());
  for (int i = 0; i < 4; ++i) {
    caf::anon_send_exit(wire->job(job.job_id), caf::exit_reason::kill);
    sched->run();
  }
  CHECK(wire->job_routes.size() == 4);
  auto err = ask_error<model::job_record>(jobs, atom::status::value, job.job_id);
  CHECK(err.code() == static_cast<uint8_t>(api_errc::internal));
  auto ctx = error_context(err);
  REQUIRE(ctx.size() == 4);
  CHECK(ctx[0].find(job.job_id) != std::string::npos);
  CHECK(ctx[3] == job.job_id);
  err = ask_error<model::job_record>(jobs, atom::install::value, job.job_id, op);
  CHECK(err.code() == static_cast<uint8_t>(api_errc::internal));
  // The supervisor goes on: other jobs are created and listed.
  auto other = create(script_job());
  auto all = ask<std::vector<model::job_record>>(jobs, atom::list::value);
  REQUIRE(all.size() == 1);
  CHECK(all[0].job_id == other.job_id);
}

TEST_CASE_FIXTURE(fixture, "a job that stays down is given up once another member runs it") {
  stop();
  member_id = "a";
  start({});
  auto view = [&](std::vector<std::string> live) {
    cluster_view v;
    v.me = "a";
    v.active = true;
    v.live = std::move(live);
    caf::anon_send(jobs, atom::cluster::value, std::move(v));
    sched->run();
  };
  view({"a"});
  enroll("node-a");
  auto job = create(script_job());
  for (int i = 0; i < 4; ++i) {
    caf::anon_send_exit(wire->job(job.job_id), caf::exit_reason::kill);
    sched->run();
  }
  CHECK(is_api_error(ask_error<model::job_record>(jobs, atom::status::value, job.job_id),
                     api_errc::internal));
  // The same members: it stays down here.
  view({"a"});
  CHECK(is_api_error(ask_error<model::job_record>(jobs, atom::status::value, job.job_id),
                     api_errc::internal));
  auto routes = wire->job_routes.size();
  // Members join, and it hashes to one of them: given up here (the store
  // lets go of it for that member to claim) ...
  std::vector<std::string> live{"a"};
  for (int k = 0; model::owner_of(job.job_id, live) == "a"; ++k)
    live.push_back("b" + std::to_string(k));
  view(live);
  // ... so when it hashes here again, this member claims it from the store
  // and runs it anew.
  view({"a"});
  CHECK(wire->job_routes.size() == routes + 1);
  CHECK(ask<model::job_record>(jobs, atom::status::value, job.job_id).job_id == job.job_id);
}

TEST_CASE_FIXTURE(fixture, "persistence commits pending health when it is stopped") {
  enroll("node-1");
  CHECK(report("node-1", 1) == 204);
  caf::anon_send(wire->node("node-1"), atom::health::value, health("node-1", 5), now());
  run_all_but_persistence();
  caf::anon_send_exit(persistence, caf::exit_reason::user_shutdown);
  sched->run();
  auto db = stored_nodes();
  REQUIRE(db.size() == 1);
  REQUIRE(db[0].has_health);
  CHECK(db[0].health.cpu_percent == 5);
}

TEST_CASE_FIXTURE(fixture, "children end with their supervisor") {
  enroll("node-1");
  CHECK(report("node-1", 1) == 204);
  auto job = create(script_job());
  auto node = wire->node("node-1");
  auto j = wire->job(job.job_id);
  auto watch = ask_later<model::node_record>(node, atom::get::value);
  sched->run();
  REQUIRE(watch->value);
  caf::anon_send_exit(registry, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(jobs, caf::exit_reason::user_shutdown);
  sched->run();
  auto gone = ask_later<model::node_record>(node, atom::get::value);
  auto gone_job = ask_later<model::job_record>(j, atom::get::value);
  sched->run();
  CHECK(gone->done);
  CHECK_FALSE(gone->value);
  CHECK(gone_job->done);
  CHECK_FALSE(gone_job->value);
}
