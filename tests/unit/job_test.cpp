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

TEST_CASE_FIXTURE(fixture, "retry: failed and timed-out nodes start another attempt") {
  enroll("node-a", "127.1.0.1");
  enroll("node-b", "127.1.0.2");
  auto spec = pip_job("p", "1");
  spec.node_timeout_seconds = 30;
  auto job = create(spec);
  ask<model::job_record>(jobs, atom::install::value, job.job_id, op);
  // Retrying while nothing failed is refused and names why.
  auto err = ask_error<model::job_record>(jobs, atom::retry::value, job.job_id, op);
  CHECK(is_api_error(err, api_errc::bad_request));
  ask<atom::ok>(jobs, atom::report::value,
                report(job.job_id, "node-a", model::node_update_state::failed), op);
  // node-b never answers: node_timeout_seconds times it out.
  sched->advance_time(31s);
  sched->run();
  auto st = status(job.job_id);
  CHECK(st.nodes[1].state == model::node_update_state::timed_out);
  CHECK(st.status == model::job_status::failed);
  wire->clear();
  auto retried = ask<model::job_record>(jobs, atom::retry::value, job.job_id, op);
  CHECK(retried.status == model::job_status::in_progress);
  for (auto& n : retried.nodes) {
    CHECK(n.state == model::node_update_state::pending);
    CHECK(n.attempt == 2);
  }
  REQUIRE(wire->notes.size() == 2);
  CHECK(std::get<3>(wire->notes[0]).attempt == 2);
  // A late report of the first attempt changes nothing; one of a later
  // attempt than the node's is refused.
  auto old = report(job.job_id, "node-a", model::node_update_state::failed);
  old.attempt = 1;
  ask<atom::ok>(jobs, atom::report::value, old, op);
  CHECK(status(job.job_id).nodes[0].state == model::node_update_state::pending);
  auto future = report(job.job_id, "node-a", model::node_update_state::succeeded);
  future.attempt = 3;
  err = ask_error<atom::ok>(jobs, atom::report::value, future, op);
  CHECK(is_api_error(err, api_errc::bad_request));
  for (auto* node : {"node-a", "node-b"}) {
    auto ok = report(job.job_id, node, model::node_update_state::succeeded);
    ok.attempt = 2;
    ask<atom::ok>(jobs, atom::report::value, ok, op);
  }
  st = status(job.job_id);
  CHECK(st.status == model::job_status::completed);
  CHECK(same_job(stored().jobs[0], st));
}

TEST_CASE_FIXTURE(fixture, "cancel tells the agents; nodes are cancelled on their word") {
  enroll("node-a", "127.1.0.1");
  enroll("node-b", "127.1.0.2");
  auto job = create(pip_job("p", "1"));
  ask<model::job_record>(jobs, atom::install::value, job.job_id, op);
  ask<atom::ok>(jobs, atom::report::value,
                report(job.job_id, "node-a", model::node_update_state::succeeded), op);
  wire->clear();
  auto c = ask<model::job_record>(jobs, atom::cancel::value, job.job_id, true, op);
  CHECK(c.status == model::job_status::cancelled);
  CHECK(c.nodes[1].state == model::node_update_state::pending);
  sched->run();
  REQUIRE(wire->notes.size() == 1);  // node-a finished: not told
  auto& note = std::get<3>(wire->notes[0]);
  CHECK(note.node_id == "node-b");
  CHECK(note.cancel);
  CHECK(note.force);
  // The cancel did not reach node-b: its entry says so, its state stays.
  caf::anon_send(std::get<0>(wire->notes[0]), atom::cancel::value, std::string("node-b"), false,
                 std::string("agent unreachable"));
  sched->run();
  auto st = status(job.job_id);
  CHECK(st.nodes[1].state == model::node_update_state::pending);
  CHECK(st.nodes[1].error_message.find("cancel not delivered") != std::string::npos);
  // After a restart the cancel goes out again.
  wire->clear();
  start(restart());
  REQUIRE(wire->notes.size() == 1);
  CHECK(std::get<3>(wire->notes[0]).cancel);
  ask<atom::ok>(jobs, atom::report::value,
                report(job.job_id, "node-b", model::node_update_state::cancelled), op);
  st = status(job.job_id);
  CHECK(st.nodes[1].state == model::node_update_state::cancelled);
  CHECK(st.nodes[1].result == 10);
  CHECK(st.status == model::job_status::cancelled);
}

TEST_CASE_FIXTURE(fixture, "a campaign: waves, an error threshold that pauses, retry and resume") {
  for (int i = 0; i < 10; ++i)
    enroll("node-" + std::to_string(i), "127.1.0." + std::to_string(i + 1));
  auto spec = pip_job("p", "1");
  spec.waves = {20, 100};
  spec.error_threshold = 50;
  auto job = create(spec);
  auto triggered = ask<model::job_record>(jobs, atom::install::value, job.job_id, op);
  sched->run();
  // Wave 0: the first 20% of the nodes (in id order) start with the trigger.
  REQUIRE(wire->notes.size() == 2);
  CHECK(std::get<3>(wire->notes[0]).node_id == "node-0");
  CHECK(std::get<3>(wire->notes[1]).node_id == "node-1");
  auto st = status(job.job_id);
  CHECK(st.nodes[2].started_at == 0);
  CHECK(st.nodes[9].wave == 1);
  ask<atom::ok>(jobs, atom::report::value,
                report(job.job_id, "node-0", model::node_update_state::succeeded), op);
  ask<atom::ok>(jobs, atom::report::value,
                report(job.job_id, "node-1", model::node_update_state::failed), op);
  sched->run();
  st = status(job.job_id);
  CHECK(st.campaign.paused);
  CHECK(st.campaign.pause_reason.find("1 of 2 started nodes failed") != std::string::npos);
  CHECK(st.status == model::job_status::in_progress);
  CHECK(same_job(stored().jobs[0], st));
  // Paused: a retry queues node-1's second attempt but starts nothing.
  wire->clear();
  ask<model::job_record>(jobs, atom::retry::value, job.job_id, op);
  sched->run();
  CHECK(wire->notes.empty());
  auto err = ask_error<model::job_record>(jobs, atom::action::value, job.job_id,
                                          std::string("pause"), op);
  CHECK(is_api_error(err, api_errc::bad_request));
  ask<model::job_record>(jobs, atom::action::value, job.job_id, std::string("resume"), op);
  sched->run();
  REQUIRE(wire->notes.size() == 1);
  CHECK(std::get<3>(wire->notes[0]).node_id == "node-1");
  CHECK(std::get<3>(wire->notes[0]).attempt == 2);
  // The campaign survives a restart where it stood.
  start(restart());
  st = status(job.job_id);
  CHECK_FALSE(st.campaign.paused);
  CHECK(st.campaign.wave == 0);
  wire->clear();
  auto ok = report(job.job_id, "node-1", model::node_update_state::succeeded);
  ok.attempt = 2;
  ask<atom::ok>(jobs, atom::report::value, ok, op);
  sched->run();
  // Wave 0 is done: wave 1 starts.
  CHECK(wire->notes.size() == 8);
  CHECK(status(job.job_id).campaign.wave == 1);
  for (int i = 2; i < 10; ++i)
    ask<atom::ok>(jobs, atom::report::value,
                  report(job.job_id, "node-" + std::to_string(i),
                         model::node_update_state::succeeded),
                  op);
  CHECK(status(job.job_id).status == model::job_status::completed);
}

TEST_CASE_FIXTURE(fixture, "a dynamic campaign takes late joiners until it is closed") {
  enroll("node-a", "127.1.0.1");
  auto spec = pip_job("p", "1");
  spec.dynamic = true;
  auto job = create(spec);
  ask<model::job_record>(jobs, atom::install::value, job.job_id, op);
  ask<atom::ok>(jobs, atom::report::value,
                report(job.job_id, "node-a", model::node_update_state::succeeded), op);
  sched->run();
  auto st = status(job.job_id);
  CHECK(st.status == model::job_status::in_progress);  // open: more may come
  wire->clear();
  enroll("node-b", "127.1.0.2");
  sched->run();
  REQUIRE(wire->notes.size() == 1);
  CHECK(std::get<3>(wire->notes[0]).node_id == "node-b");
  st = status(job.job_id);
  REQUIRE(st.nodes.size() == 2);
  CHECK(same_job(stored().jobs[0], st));
  // A job that is not dynamic takes nobody.
  auto fixed = create(pip_job("q", "1"));
  ask<model::job_record>(jobs, atom::install::value, fixed.job_id, op);
  ask<model::job_record>(jobs, atom::action::value, job.job_id, std::string("close"), op);
  auto err = ask_error<model::job_record>(jobs, atom::action::value, fixed.job_id,
                                          std::string("close"), op);
  CHECK(is_api_error(err, api_errc::bad_request));
  wire->clear();
  enroll("node-c", "127.1.0.3");
  sched->run();
  CHECK(wire->notes.empty());
  CHECK(status(job.job_id).nodes.size() == 2);
  CHECK(status(fixed.job_id).nodes.size() == 2);
  ask<atom::ok>(jobs, atom::report::value,
                report(job.job_id, "node-b", model::node_update_state::succeeded), op);
  CHECK(status(job.job_id).status == model::job_status::completed);
}

TEST_CASE_FIXTURE(fixture, "an automatic retry keeps a job running until it is done") {
  enroll("node-a", "127.1.0.1");
  auto spec = pip_job("p", "1");
  spec.retries = 1;
  spec.retry_backoff_seconds = 10;
  auto job = create(spec);
  ask<model::job_record>(jobs, atom::install::value, job.job_id, op);
  ask<atom::ok>(jobs, atom::report::value,
                report(job.job_id, "node-a", model::node_update_state::failed), op);
  sched->run();
  auto st = status(job.job_id);
  CHECK(st.status == model::job_status::in_progress);  // a retry is ahead
  CHECK(st.nodes[0].retry_at > 0);
  wire->clear();
  sched->advance_time(11s);
  sched->run();
  REQUIRE(wire->notes.size() == 1);
  CHECK(std::get<3>(wire->notes[0]).attempt == 2);
  auto again = report(job.job_id, "node-a", model::node_update_state::failed);
  again.attempt = 2;
  ask<atom::ok>(jobs, atom::report::value, again, op);
  sched->run();
  CHECK(status(job.job_id).status == model::job_status::failed);  // no retries left
}
