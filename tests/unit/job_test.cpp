// Update jobs, their actors and their supervisor: create, trigger, notify
// agents, follow step reports to the job's outcome, deadlines, resuming after
// a restart, and the errors that name the problem. Commit-then-change is
// job_commit_test.cpp's, restarts of job actors supervision_test.cpp's.
#include "actor_fixture.hpp"
#include "model/json_value.hpp"

using namespace coapfleet;
using namespace coapfleet::actor_test;

namespace {

/// A pip job for every node.
model::job_spec pip_job(const std::string& name, const std::string& version) {
  model::job_spec spec;
  spec.name = name;
  spec.version = version;
  spec.package_type = "pip";
  spec.target_nodes = {"all"};
  spec.packages = {"aiocoap==0.4.7"};
  return spec;
}

}  // namespace

TEST_CASE_FIXTURE(fixture, "a job notifies its targets, follows reports and completes") {
  enroll("node-a", "127.1.0.1");
  enroll("node-b", "127.1.0.2");
  auto job = create(pip_job("python-packages-update", "2025.09.16"));
  CHECK(job.status == model::job_status::created);
  auto triggered = ask<model::job_record>(jobs, atom::install::value, job.job_id, op);
  CHECK(triggered.status == model::job_status::in_progress);
  REQUIRE(triggered.nodes.size() == 2);
  REQUIRE(wire->notes.size() == 2);
  CHECK(std::get<1>(wire->notes[0]) == "127.1.0.1");
  // The ids only: the agent fetches the spec itself.
  CHECK(std::get<3>(wire->notes[0]).node_id == "node-a");
  CHECK(std::get<3>(wire->notes[0]).spec.package_type.empty());
  // The transport tells the job that node-a's agent took the notification.
  caf::anon_send(std::get<0>(wire->notes[0]), atom::notified::value, std::string("node-a"), true,
                 std::string());
  sched->run();
  auto st = status(job.job_id);
  CHECK(st.nodes[0].state == model::node_update_state::notified);
  // Second install is refused.
  auto err = ask_error<model::job_record>(jobs, atom::install::value, job.job_id, op);
  CHECK(is_api_error(err, api_errc::bad_request));
  // Reports walk node-a to succeeded; a backwards step is refused.
  ask<atom::ok>(jobs, atom::report::value,
                  report(job.job_id, "node-a", model::node_update_state::downloading), op);
  ask<atom::ok>(jobs, atom::report::value,
                  report(job.job_id, "node-a", model::node_update_state::succeeded), op);
  err = ask_error<atom::ok>(jobs, atom::report::value,
                        report(job.job_id, "node-a", model::node_update_state::installing), op);
  CHECK(is_api_error(err, api_errc::bad_request));
  err = ask_error<atom::ok>(jobs, atom::report::value,
                        report(job.job_id, "node-z", model::node_update_state::installing), op);
  CHECK(is_api_error(err, api_errc::not_found));
  st = status(job.job_id);
  CHECK(st.status == model::job_status::in_progress);
  // node-b fails: the job is partially failed.
  ask<atom::ok>(jobs, atom::report::value,
                  report(job.job_id, "node-b", model::node_update_state::failed), op);
  st = status(job.job_id);
  CHECK(st.status == model::job_status::partially_failed);
  // Everything survives a restart.
  auto stored = restart();
  REQUIRE(stored.jobs.size() == 1);
  CHECK(stored.jobs[0].status == model::job_status::partially_failed);
  REQUIRE(stored.jobs[0].nodes.size() == 2);
  CHECK(stored.jobs[0].nodes[0].state == model::node_update_state::succeeded);
  CHECK(stored.jobs[0].nodes[1].state == model::node_update_state::failed);
}

TEST_CASE_FIXTURE(fixture, "unreachable agents fail, deadlines time out, restarts resume") {
  enroll("node-a", "127.1.0.1");
  enroll("node-b", "127.1.0.2");
  enroll("node-c", "127.1.0.3");
  auto spec = script_job({"node-a", "node-b", "node-c"});
  spec.timeout_seconds = 30;
  auto unknown = spec;
  unknown.target_nodes = {"node-a", "ghost"};
  auto ghost_job = create(unknown);
  auto err = ask_error<model::job_record>(jobs, atom::install::value, ghost_job.job_id, op);
  CHECK(is_api_error(err, api_errc::not_found));
  auto job = create(spec);
  ask<model::job_record>(jobs, atom::install::value, job.job_id, op);
  REQUIRE(wire->notes.size() == 3);
  auto job_handle = std::get<0>(wire->notes[0]);
  caf::anon_send(job_handle, atom::notified::value, std::string("node-a"), false,
                 std::string("agent unreachable at 127.1.0.1:5683"));
  caf::anon_send(job_handle, atom::notified::value, std::string("node-b"), true, std::string());
  sched->run();
  auto st = status(job.job_id);
  CHECK(st.nodes[0].state == model::node_update_state::failed);
  CHECK(st.nodes[0].error_message.find("unreachable") != std::string::npos);
  // node-c never answered: after a restart its notification goes out again.
  auto stored = restart();
  start(std::move(stored));
  REQUIRE(wire->notes.size() == 1);
  CHECK(std::get<3>(wire->notes[0]).node_id == "node-c");
  // The deadline: node-b and node-c never finish.
  sched->advance_time(71s);  // 2 x timeout_seconds + 10 s
  sched->run();
  st = status(job.job_id);
  CHECK(st.nodes[1].state == model::node_update_state::timed_out);
  CHECK(st.nodes[2].state == model::node_update_state::timed_out);
  CHECK(st.status == model::job_status::failed);
}

TEST_CASE_FIXTURE(fixture, "unknown jobs and invalid specs are errors that name the problem") {
  auto err = ask_error<model::job_record>(jobs, atom::status::value, std::string("nope"));
  CHECK(is_api_error(err, api_errc::not_found));
  model::job_spec bad;
  bad.name = "x";
  bad.version = "1";
  bad.package_type = "pip";  // no packages
  bad.target_nodes = {"all"};
  err = ask_error<model::job_record>(jobs, atom::create::value, bad, op);
  CHECK(is_api_error(err, api_errc::bad_request));
  auto ctx = error_context(err);
  REQUIRE(ctx.size() == 4);
  CHECK(ctx[1] == "packages");
  CHECK(ask<std::vector<model::job_record>>(jobs, atom::list::value).empty());
}

TEST_CASE_FIXTURE(fixture, "GET /updates is each job's kept summary, encoded again only when it changed") {
  enroll("node-a", "127.1.0.1");
  enroll("node-b", "127.1.0.2");
  auto spec = pip_job("pkgs", "1");
  auto listing = [&] { return ask<std::string>(jobs, atom::listing::value); };
  auto records = [&] { return ask<std::vector<model::job_record>>(jobs, atom::list::value); };
  CHECK(listing() == "{\"updates\":[]}");
  auto one = create(spec);
  auto two = create(spec);
  CHECK(listing() == model::encode_jobs(records()));
  // A change of one job shows (its counts and status), the other's stays.
  ask<model::job_record>(jobs, atom::install::value, one.job_id, op);
  ask<atom::ok>(jobs, atom::report::value,
                report(one.job_id, "node-a", model::node_update_state::succeeded), op);
  auto body = listing();
  CHECK(body == model::encode_jobs(records()));
  CHECK(body.find("\"succeeded\":1") != std::string::npos);
  CHECK(body.find("\"status\":\"in_progress\"") != std::string::npos);
  ask<atom::ok>(jobs, atom::report::value,
                report(one.job_id, "node-b", model::node_update_state::failed), op);
  body = listing();
  CHECK(body == model::encode_jobs(records()));
  CHECK(body.find("\"status\":\"partially_failed\"") != std::string::npos);
  // A deleted job is left out.
  ask<atom::ok>(jobs, atom::remove::value, two.job_id, op);
  auto left = records();
  REQUIRE(left.size() == 1);
  CHECK(listing() == model::encode_jobs(left));
  // After a restart: the same listing from the stored jobs.
  start(restart());
  CHECK(listing() == model::encode_jobs(left));
}

TEST_CASE_FIXTURE(fixture, "each copy of /updates/changes lists the jobs changed since the previous one") {
  enroll("node-a", "127.1.0.1");
  auto spec = pip_job("pkgs", "1");
  struct copy {
    uint64_t from = 0, to = 0;
    bool reset = false;
    std::vector<std::string> ids, statuses;
    std::vector<bool> deleted;
  };
  auto changes = [&] {
    auto body = ask<std::string>(jobs, atom::changes::value);
    auto doc = model::json_document::parse(body);
    REQUIRE(doc.ok());
    copy c;
    c.from = static_cast<uint64_t>(doc.root()["from"].as_int());
    c.to = static_cast<uint64_t>(doc.root()["to"].as_int());
    c.reset = doc.root()["reset"].as_bool();
    for (auto j : doc.root()["updates"].elements()) {
      c.ids.push_back(j["job_id"].as_string());
      c.statuses.push_back(j["status"].is_string() ? j["status"].as_string() : "");
      c.deleted.push_back(j["deleted"].is_bool() && j["deleted"].as_bool());
    }
    return c;
  };
  auto first = changes();
  CHECK(first.ids.empty());
  CHECK(first.to == first.from + 1);
  auto one = create(spec);
  auto two = create(spec);
  auto c = changes();
  CHECK(c.from == first.to);  // chained: a missed copy shows
  CHECK(c.ids.size() == 2);
  CHECK(changes().ids.empty());  // nothing changed since
  // A job's step shows as that job's new summary, the other one is not listed.
  ask<model::job_record>(jobs, atom::install::value, one.job_id, op);
  ask<atom::ok>(jobs, atom::report::value,
                report(one.job_id, "node-a", model::node_update_state::succeeded), op);
  c = changes();
  REQUIRE(c.ids == std::vector<std::string>{one.job_id});
  CHECK(c.statuses[0] == "completed");
  // A deleted job is listed as deleted.
  ask<atom::ok>(jobs, atom::remove::value, two.job_id, op);
  c = changes();
  REQUIRE(c.ids == std::vector<std::string>{two.job_id});
  CHECK(c.deleted[0]);
  // More changed jobs than a copy lists (the fixture's max_changes): reset.
  for (size_t i = 0; i <= max_changes; ++i)
    create(spec);
  c = changes();
  CHECK(c.reset);
  CHECK(c.ids.empty());
  c = changes();
  CHECK_FALSE(c.reset);
}
