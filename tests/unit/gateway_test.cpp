// The server's gateway on the test coordinator, with mock owners (registry,
// job supervisor, system actor, persistence, artifact store) and a mock
// transport that records every (reply, id, ...) it gets: the test sends the
// typed requests the transport would, decides how the owners answer, and
// reads what goes back — the CoAP code, content format and JSON body of each
// write, the typed representation of each observed resource, and how the
// database ping shows in GET /health.
#include "gateway_fixture.hpp"

using namespace coapfleet;
using namespace coapfleet::actor_test;

namespace {

model::job_record job(const std::string& id, model::job_status st = model::job_status::created) {
  model::job_record j;
  j.job_id = id;
  j.spec.name = "fw";
  j.spec.version = "1";
  j.spec.package_type = "script";
  j.spec.script = "true";
  j.spec.target_nodes = {"all"};
  j.status = st;
  j.created_at = fake_epoch;
  return j;
}

model::node_record node(const std::string& id, model::node_status st, bool with_health) {
  model::node_record n;
  n.reg.node_id = id;
  n.reg.ip_address = "127.1.0.1";
  n.status = st;
  n.registered_at = fake_epoch;
  n.last_seen = fake_epoch;
  if (with_health) {
    n.has_health = true;
    n.health.node_id = id;
    n.health.cpu_percent = 12.5;
    n.health_at = fake_epoch;
  }
  return n;
}

}  // namespace

// -- writes ------------------------------------------------------------------------------

TEST_CASE_FIXTURE(gateway_fixture, "gateway: POST /nodes is 2.01 naming the node") {
  model::node_registration reg;
  reg.node_id = "node-7";
  reg.ip_address = "127.1.0.7";
  send(atom::enroll::value, uint64_t{1}, reg, from);
  REQUIRE(registry_does->enrolled.size() == 1);
  CHECK(registry_does->enrolled[0].first.ip_address == "127.1.0.7");
  CHECK(registry_does->enrolled[0].second.identity == "operator-1");
  auto r = reply_to(1);
  check_json(r, 201);
  CHECK(r.payload == model::encode_message("Node registered successfully", {{"node_id", "node-7"}}));
  auto doc = json_of(r);
  CHECK(doc.root()["message"].as_string() == "Node registered successfully");
  CHECK(doc.root()["node_id"].as_string() == "node-7");
}

TEST_CASE_FIXTURE(gateway_fixture, "gateway: answered requests leave no timer behind") {
  // One timer bounds every open request (CAF 0.17 keeps a request's own
  // timeout alive for its full time even after the answer came).
  auto before = sched->clock().schedule().size();
  for (uint64_t id = 100; id < 1100; ++id) {
    model::node_registration reg;
    reg.node_id = "node-" + std::to_string(id);
    reg.ip_address = "127.0.0.1";
    send(atom::enroll::value, id, reg, peer{"127.0.0.1", 42000, "", model::role::trusted, false});
  }
  CHECK(wire->answers_to(1099) == 1);
  CHECK(sched->clock().schedule().size() <= before + 1);
  // The one timer finds nothing open: no 5.03 follows the answers.
  advance(request_timeout);
  CHECK(wire->answers_to(100) == 1);
  CHECK(wire->answers_to(1099) == 1);
}

TEST_CASE_FIXTURE(gateway_fixture, "gateway: POST /updates create, install, status, cancel, remove") {
  jobs_do->jobs = {job("job-1")};
  auto spec = job("x").spec;
  spec.name = "tools";
  send(atom::create::value, uint64_t{2}, spec, from);
  auto r = reply_to(2);
  check_json(r, 201);
  auto doc = json_of(r);
  CHECK(doc.root()["job_id"].as_string() == "job-2");
  CHECK(doc.root()["status"].as_string() == "created");
  CHECK(doc.root()["message"].as_string() == "Update request created successfully");

  send(atom::install::value, uint64_t{3}, std::string("job-1"), from);
  r = reply_to(3);
  check_json(r, 204);
  CHECK(r.payload == model::encode_job_triggered(jobs_do->jobs[0]));
  doc = json_of(r);
  CHECK(doc.root()["success"].as_bool() == true);
  CHECK(doc.root()["job_id"].as_string() == "job-1");
  CHECK(doc.root()["message"].as_string() == "Update job job-1 triggered successfully");
  CHECK(doc.root()["status"].as_string() == "in_progress");

  send(atom::observe::value, uint64_t{4}, resource{resource_kind::job_status, "job-1"});
  r = reply_to(4);
  check_json(r, 205);
  CHECK(r.payload == model::encode_job_status(jobs_do->jobs[0]));
  CHECK(json_of(r).root()["job_id"].as_string() == "job-1");

  send(atom::cancel::value, uint64_t{5}, std::string("job-1"), false, from);
  r = reply_to(5);
  check_json(r, 204);
  doc = json_of(r);
  CHECK(doc.root()["message"].as_string() == "Update job job-1 cancelled");
  CHECK(doc.root()["job_id"].as_string() == "job-1");
  CHECK(doc.root()["status"].as_string() == "cancelled");

  send(atom::remove::value, uint64_t{6}, std::string("job-1"), from);
  r = reply_to(6);
  check_json(r, 202);
  doc = json_of(r);
  CHECK(doc.root()["message"].as_string() == "Update job job-1 deleted");
  CHECK(doc.root()["job_id"].as_string() == "job-1");

  CHECK(jobs_do->asked == std::vector<std::string>{"create tools", "install job-1",
                                                   "status job-1", "cancel job-1",
                                                   "remove job-1"});
  // Every change carries the requester: authorization is decided from it.
  REQUIRE(jobs_do->peers.size() == 4);
  for (auto& p : jobs_do->peers)
    CHECK(p.identity == "operator-1");
}

TEST_CASE_FIXTURE(gateway_fixture, "gateway: an agent's step report is 2.04 Report accepted") {
  model::update_report rep;
  rep.job_id = "job-1";
  rep.node_id = "node-1";
  rep.state = model::node_update_state::downloading;
  rep.progress = 40;
  send(atom::report::value, uint64_t{7}, rep,
       peer{"127.1.0.1", 5683, "node-1", model::role::node, true});
  REQUIRE(jobs_do->reports.size() == 1);
  CHECK(jobs_do->reports[0].progress == 40);
  CHECK(jobs_do->peers.at(0).identity == "node-1");
  auto r = reply_to(7);
  check_json(r, 204);
  CHECK(json_of(r).root()["message"].as_string() == "Report accepted");
}

TEST_CASE_FIXTURE(gateway_fixture, "gateway: POST /system status, restart and shutdown") {
  system_does->status.database = "connected";
  system_does->status.nodes = 3;
  system_does->status.jobs = 2;
  system_does->status.timestamp = fake_epoch;
  send(atom::action::value, uint64_t{8}, model::system_action::status, from);
  auto r = reply_to(8);
  check_json(r, 205);
  CHECK(r.payload == model::encode_system_status(system_does->status));
  auto doc = json_of(r);
  CHECK(doc.root()["services"]["database"].as_string() == "connected");
  CHECK(doc.root()["nodes"].as_int() == 3);
  CHECK(doc.root()["jobs"].as_int() == 2);
  CHECK(system_does->actions.empty());  // a status is asked, not acted on

  send(atom::action::value, uint64_t{9}, model::system_action::restart, from);
  r = reply_to(9);
  CHECK(r.code == 204);
  CHECK(r.content_format == 50);
  CHECK(r.after == after_reply::restart);
  doc = json_of(r);
  CHECK(doc.root()["message"].as_string() == "Server restart initiated");
  CHECK(doc.root()["action"].as_string() == "restart");

  send(atom::action::value, uint64_t{10}, model::system_action::shutdown, from);
  r = reply_to(10);
  CHECK(r.code == 204);
  CHECK(r.after == after_reply::shutdown);
  doc = json_of(r);
  CHECK(doc.root()["message"].as_string() == "Server shutdown initiated");
  CHECK(doc.root()["action"].as_string() == "shutdown");

  REQUIRE(system_does->actions.size() == 2);
  CHECK(system_does->actions[0].first == model::system_action::restart);
  CHECK(system_does->actions[1].first == model::system_action::shutdown);
  CHECK(system_does->actions[1].second.identity == "operator-1");

  // Disabled: the system actor's 4.03 goes out, and nothing stops afterwards.
  system_does->next = verdict::fail(make_api_error(
    api_errc::forbidden, "system action restart is disabled by configuration", "action"));
  send(atom::action::value, uint64_t{11}, model::system_action::restart, from);
  r = reply_to(11);
  check_json(r, 403);
  doc = json_of(r);
  CHECK(doc.root()["error"].as_string() == "system action restart is disabled by configuration");
  CHECK(doc.root()["field"].as_string() == "action");
}

TEST_CASE_FIXTURE(gateway_fixture, "gateway: an upload carries the pins of the jobs that name it") {
  auto a = job("job-1");
  a.spec.package_type = "file";
  a.spec.artifact = "fw.bin";
  a.spec.artifact_sha256 = "aa11";
  auto b = a;
  b.job_id = "job-2";
  b.spec.artifact_sha256 = "bb22";
  auto other = job("job-3");
  other.spec.artifact = "other.bin";
  jobs_do->jobs = {a, other, b};
  send(atom::upload::value, uint64_t{12}, artifact_upload{"fw.bin", "new content", {}}, from);
  CHECK(jobs_do->asked == std::vector<std::string>{"uses fw.bin"});
  REQUIRE(store_does->uploads.size() == 1);
  auto& up = store_does->uploads[0];
  CHECK(up.name == "fw.bin");
  CHECK(up.body == "new content");
  REQUIRE(up.pins.size() == 2);
  CHECK(up.pins[0].job_id == "job-1");
  CHECK(up.pins[0].sha256 == "aa11");
  CHECK(up.pins[1].job_id == "job-2");
  CHECK(up.pins[1].sha256 == "bb22");
  auto r = reply_to(12);
  check_json(r, 204);
  auto doc = json_of(r);
  CHECK(doc.root()["name"].as_string() == "fw.bin");
  CHECK(doc.root()["size"].as_int() == 11);
  CHECK(doc.root()["sha256"].as_string() == mock_sha256);

  // The store refuses other content for them: 4.09 naming the jobs.
  store_does->next = verdict::fail(make_api_error(
    api_errc::conflict, "fw.bin is pinned by unfinished jobs", "name", "jobs", "job-1, job-2"));
  send(atom::upload::value, uint64_t{13}, artifact_upload{"fw.bin", "newer", {}}, from);
  r = reply_to(13);
  check_json(r, 409);
  doc = json_of(r);
  CHECK(doc.root()["error"].as_string() == "fw.bin is pinned by unfinished jobs");
  CHECK(doc.root()["jobs"].as_string() == "job-1, job-2");

  // When the supervisor cannot say which jobs name it, nothing is stored.
  store_does->next = {};
  jobs_do->next = verdict::fail(make_api_error(api_errc::internal, "job directory unreadable"));
  send(atom::upload::value, uint64_t{14}, artifact_upload{"fw.bin", "newest", {}}, from);
  check_json(reply_to(14), 500);
  CHECK(store_does->uploads.size() == 2);
}

// -- errors of the owners -------------------------------------------------------------

TEST_CASE_FIXTURE(gateway_fixture, "gateway: each kind of application error has its CoAP code and JSON body") {
  struct expectation {
    api_errc errc;
    uint16_t code;
  };
  const expectation all[] = {
    {api_errc::bad_request, 400}, {api_errc::unauthorized, 401}, {api_errc::forbidden, 403},
    {api_errc::not_found, 404},   {api_errc::conflict, 409},     {api_errc::too_large, 413},
    {api_errc::internal, 500},    {api_errc::unavailable, 503},
  };
  uint64_t id = 100;
  for (auto& e : all) {
    CAPTURE(e.code);
    CHECK(response_code_of(e.errc) == e.code);
    jobs_do->next = verdict::fail(
      make_api_error(e.errc, "what went wrong", "target_nodes", "target_nodes", "ghost"));
    send(atom::create::value, ++id, job("x").spec, from);
    auto r = reply_to(id);
    CHECK(r.code == e.code);
    CHECK(r.content_format == 50);
    // Only an overloaded owner asks the client to come back later.
    CHECK(r.max_age == (e.code == 503 ? 5u : UINT32_MAX));
    CHECK(r.payload
          == model::encode_error("what went wrong",
                                 {{"field", "target_nodes"}, {"target_nodes", "ghost"}}));
    auto doc = json_of(r);
    CHECK(doc.root()["error"].as_string() == "what went wrong");
    CHECK(doc.root()["field"].as_string() == "target_nodes");
    CHECK(doc.root()["target_nodes"].as_string() == "ghost");
  }
  // An error without a field is {"error"} alone.
  jobs_do->next = verdict::fail(make_api_error(api_errc::not_found, "update job not found"));
  send(atom::install::value, uint64_t{200}, std::string("job-9"), from);
  auto r = reply_to(200);
  check_json(r, 404);
  CHECK(r.payload == R"({"error":"update job not found"})");
  // An error that is not the application's is a 5.00 that says what it was.
  jobs_do->next = verdict::fail(caf::make_error(caf::sec::unexpected_message));
  send(atom::install::value, uint64_t{201}, std::string("job-9"), from);
  r = reply_to(201);
  check_json(r, 500);
  CHECK(json_of(r).root()["error"].as_string().rfind("internal error: ", 0) == 0);
}

TEST_CASE_FIXTURE(gateway_fixture, "gateway: every request passes its owner's error on") {
  auto refusal = [](const std::string& what) {
    return verdict::fail(make_api_error(api_errc::bad_request, what, "field-" + what));
  };
  registry_does->next = refusal("enroll");
  jobs_do->next = refusal("jobs");
  system_does->next = refusal("system");
  store_does->next = refusal("store");
  model::node_registration reg;
  reg.node_id = "node-1";
  model::update_report rep;
  rep.job_id = "job-1";
  send(atom::enroll::value, uint64_t{1}, reg, from);
  send(atom::create::value, uint64_t{2}, job("x").spec, from);
  send(atom::install::value, uint64_t{3}, std::string("job-1"), from);
  send(atom::report::value, uint64_t{4}, rep, from);
  send(atom::cancel::value, uint64_t{5}, std::string("job-1"), false, from);
  send(atom::remove::value, uint64_t{6}, std::string("job-1"), from);
  send(atom::action::value, uint64_t{7}, model::system_action::status, from);
  send(atom::action::value, uint64_t{8}, model::system_action::shutdown, from);
  const std::pair<uint64_t, const char*> expected[] = {
    {1, "enroll"}, {2, "jobs"}, {3, "jobs"}, {4, "jobs"},
    {5, "jobs"},   {6, "jobs"}, {7, "system"}, {8, "system"},
  };
  for (auto& [id, what] : expected) {
    CAPTURE(id);
    auto r = reply_to(id);
    check_json(r, 400);
    auto doc = json_of(r);
    CHECK(doc.root()["error"].as_string() == what);
    CHECK(doc.root()["field"].as_string() == std::string("field-") + what);
  }
  // The upload's first owner is the supervisor; then the store.
  send(atom::upload::value, uint64_t{9}, artifact_upload{"fw.bin", "x", {}}, from);
  CHECK(json_of(reply_to(9)).root()["error"].as_string() == "jobs");
  jobs_do->next = {};
  send(atom::upload::value, uint64_t{10}, artifact_upload{"fw.bin", "x", {}}, from);
  CHECK(json_of(reply_to(10)).root()["error"].as_string() == "store");
}

TEST_CASE_FIXTURE(gateway_fixture, "gateway: an owner that does not answer in time is a 5.03 with Max-Age") {
  jobs_do->next = verdict::never();
  send(atom::install::value, uint64_t{20}, std::string("job-1"), from);
  // Bounded: the clock walks up to just before the timeout, nothing goes out.
  for (int i = 1; i < 10; ++i) {
    advance(std::chrono::seconds(1));
    CHECK(wire->answers_to(20) == 0);
  }
  advance(std::chrono::seconds(1));
  auto r = reply_to(20);
  CHECK(r.code == 503);
  CHECK(r.content_format == 50);
  CHECK(r.max_age == 5);
  CHECK(json_of(r).root()["error"].as_string().find("timed out") != std::string::npos);
  // Observations time out the same way.
  registry_does->next = verdict::never();
  send(atom::observe::value, uint64_t{21}, resource{resource_kind::health, {}});
  advance(request_timeout);
  r = reply_to(21);
  CHECK(r.code == 503);
  CHECK(r.max_age == 5);
}

TEST_CASE_FIXTURE(gateway_fixture, "gateway: an owner that is gone is a 5.03 asking to retry shortly") {
  kill(peers.jobs);
  kill(peers.system);
  send(atom::create::value, uint64_t{30}, job("x").spec, from);
  send(atom::action::value, uint64_t{31}, model::system_action::restart, from);
  send(atom::observe::value, uint64_t{32}, resource{resource_kind::updates, {}});
  for (uint64_t id : {30, 31, 32}) {
    CAPTURE(id);
    auto r = reply_to(id);
    CHECK(r.code == 503);
    CHECK(r.content_format == 50);
    CHECK(r.max_age == 2);
    CHECK(r.after == after_reply::nothing);  // a restart that was never allowed does not happen
    CHECK(json_of(r).root()["error"].as_string().find("restarting") != std::string::npos);
  }
}

// -- observed resources -----------------------------------------------------------------

TEST_CASE_FIXTURE(gateway_fixture, "gateway: /health is the registry's fleet health with the database state") {
  registry_does->health.status = "degraded";
  registry_does->health.total_nodes = 3;
  registry_does->health.online_nodes = 2;
  registry_does->health.unhealthy_nodes = 1;
  registry_does->health.unhealthy = {{"node-3", {"disk full"}}};
  send(atom::observe::value, uint64_t{40}, resource{resource_kind::health, {}});
  auto h = health_reply_to(40);
  CHECK(h.status == "degraded");
  CHECK(h.total_nodes == 3);
  CHECK(h.online_nodes == 2);
  REQUIRE(h.unhealthy.size() == 1);
  CHECK(h.unhealthy[0].error_messages == std::vector<std::string>{"disk full"});
  CHECK(h.server.database == "connected");
}

TEST_CASE_FIXTURE(gateway_fixture, "gateway: /updates, /updates/<id>/status and /artifacts are JSON 2.05") {
  jobs_do->jobs = {job("job-1"), job("job-2", model::job_status::completed)};
  send(atom::observe::value, uint64_t{42}, resource{resource_kind::updates, {}});
  auto r = reply_to(42);
  check_json(r, 205);
  CHECK(r.payload == model::encode_jobs(jobs_do->jobs));
  auto doc = json_of(r);
  REQUIRE(doc.root()["updates"].size() == 2);
  CHECK(doc.root()["updates"].at(1)["job_id"].as_string() == "job-2");

  send(atom::observe::value, uint64_t{43}, resource{resource_kind::job_status, "job-2"});
  r = reply_to(43);
  check_json(r, 205);
  CHECK(r.payload == model::encode_job_status(jobs_do->jobs[1]));
  CHECK(json_of(r).root()["status"].as_string() == "completed");

  send(atom::observe::value, uint64_t{44}, resource{resource_kind::job_status, "job-9"});
  r = reply_to(44);
  check_json(r, 404);
  CHECK(json_of(r).root()["job_id"].as_string() == "job-9");

  artifact_info a;
  a.name = "fw.bin";
  a.size = 4;
  a.sha256 = mock_sha256;
  a.uploaded_at = fake_epoch;
  store_does->stored = {a};
  send(atom::observe::value, uint64_t{45}, resource{resource_kind::artifacts, {}});
  r = reply_to(45);
  check_json(r, 205);
  CHECK(r.payload == model::encode_artifacts(store_does->stored));
  doc = json_of(r);
  REQUIRE(doc.root()["artifacts"].size() == 1);
  CHECK(doc.root()["artifacts"].at(0)["name"].as_string() == "fw.bin");
}

TEST_CASE_FIXTURE(gateway_fixture, "gateway: /nodes/<id>/health of a known node, and 4.04 for an unknown one") {
  registry_does->nodes = {node("node-a", model::node_status::online, true),
                          node("node-b", model::node_status::stale, false)};
  send(atom::observe::value, uint64_t{46}, resource{resource_kind::node_health, "node-a"});
  REQUIRE(registry_does->gets.size() == 1);
  CHECK(registry_does->gets[0] == "node-a");
  auto r = reply_to(46);
  check_json(r, 205);
  CHECK(r.payload == model::encode_node_health(registry_does->nodes[0]));
  auto doc = json_of(r);
  CHECK(doc.root()["node_id"].as_string() == "node-a");
  CHECK(doc.root()["cpu_percent"].as_number() == 12.5);
  CHECK(doc.root()["node_status"].as_string() == "online");

  send(atom::observe::value, uint64_t{47}, resource{resource_kind::node_health, "node-b"});
  r = reply_to(47);
  check_json(r, 205);
  doc = json_of(r);
  CHECK(doc.root()["received_at"].is_null());
  CHECK(doc.root()["node_status"].as_string() == "stale");

  send(atom::observe::value, uint64_t{48}, resource{resource_kind::node_health, "ghost"});
  r = reply_to(48);
  check_json(r, 404);
  doc = json_of(r);
  CHECK(doc.root()["error"].as_string() == "node not registered");
  CHECK(doc.root()["node_id"].as_string() == "ghost");
}

TEST_CASE_FIXTURE(gateway_fixture, "gateway: /system is the system actor's info as a typed reply") {
  system_does->info.version = "9.9.9";
  system_does->info.uptime_seconds = 42;
  system_does->info.available_actions = {"status"};
  send(atom::observe::value, uint64_t{49}, resource{resource_kind::system, {}});
  REQUIRE(wire->answers_to(49) == 1);
  auto s = only(wire->systems, 49, "system_info");
  CHECK(s.version == "9.9.9");
  CHECK(s.uptime_seconds == 42);
  CHECK(s.available_actions == std::vector<std::string>{"status"});
}

TEST_CASE_FIXTURE(gateway_fixture, "gateway: a resource of no known kind is a 4.04 naming it") {
  send(atom::observe::value, uint64_t{50}, resource{static_cast<resource_kind>(99), "x"});
  auto r = reply_to(50);
  check_json(r, 404);
  CHECK(json_of(r).root()["error"].as_string() == "no such resource");
}

// -- the database ping ------------------------------------------------------------------

TEST_CASE_FIXTURE(gateway_fixture, "gateway: a failing database ping shows in /health and tells the transport") {
  CHECK(database->pings == 1);  // at start
  CHECK(database_shown(60) == "connected");
  // The database answers, as it did: nothing changes over several pings.
  ping_intervals(3);
  CHECK(database->pings == 4);
  CHECK(health_changes() == 0);

  // It says it cannot serve a query: one change, of /health, as telemetry.
  database->ping_ok = false;
  ping_intervals(1);
  CHECK(health_changes() == 1);
  CHECK(wire->changed.size() == 1);
  CHECK(database_shown(61) == "disconnected");
  ping_intervals(3);
  CHECK(health_changes() == 1);  // told once, not at every ping

  // Back: told again.
  database->ping_ok = true;
  ping_intervals(1);
  CHECK(health_changes() == 2);
  CHECK(database_shown(62) == "connected");

  // An error instead of an answer is a database that does not answer.
  database->next = verdict::fail(make_api_error(api_errc::internal, "disk I/O error"));
  ping_intervals(1);
  CHECK(health_changes() == 3);
  CHECK(database_shown(63) == "disconnected");
  database->next = {};
  ping_intervals(1);
  CHECK(health_changes() == 4);
  CHECK(database_shown(64) == "connected");
}

TEST_CASE_FIXTURE(gateway_fixture, "gateway: a ping that is never answered, or a persistence actor that is gone, is disconnected") {
  database->next = verdict::never();
  ping_intervals(1);  // the ping goes out ...
  CHECK(health_changes() == 0);
  CHECK(database_shown(70) == "connected");
  ping_intervals(1);  // ... and its 5 s are up
  CHECK(health_changes() == 1);
  CHECK(database_shown(71) == "disconnected");

  database->next = {};
  ping_intervals(2);
  CHECK(database_shown(72) == "connected");
  CHECK(health_changes() == 2);

  kill(peers.persistence);
  ping_intervals(1);
  CHECK(health_changes() == 3);
  CHECK(database_shown(73) == "disconnected");
  ping_intervals(3);
  CHECK(health_changes() == 3);
}

TEST_CASE_FIXTURE(gateway_fixture, "gateway: refused requests are 4.01 / 4.03 and reach no actor") {
  peer node1{"127.1.0.1", 5683, "node-1", model::role::node, true};
  peer reader{"127.0.0.5", 40000, "dashboard", model::role::reader, true};
  peer outsider{"127.0.0.2", 40000, "", model::role::reader, false};  // plain, untrusted
  model::node_registration reg;
  reg.node_id = "node-2";
  reg.ip_address = "127.1.0.2";
  // A node registering under another node's id.
  send(atom::enroll::value, uint64_t{60}, reg, node1);
  auto r = reply_to(60);
  check_json(r, 403);
  CHECK(json_of(r).root()["error"].as_string().find("node-1") != std::string::npos);
  CHECK(registry_does->enrolled.empty());
  // ... and reporting another node's job step.
  model::update_report rep;
  rep.job_id = "job-1";
  rep.node_id = "node-2";
  rep.state = model::node_update_state::succeeded;
  send(atom::report::value, uint64_t{61}, rep, node1);
  check_json(reply_to(61), 403);
  CHECK(jobs_do->reports.empty());
  // A reader creating a job; a plain outsider shutting the server down.
  model::job_spec spec;
  spec.name = "fw";
  spec.version = "1";
  spec.package_type = "script";
  send(atom::create::value, uint64_t{62}, spec, reader);
  check_json(reply_to(62), 403);
  send(atom::action::value, uint64_t{63}, model::system_action::shutdown, outsider);
  r = reply_to(63);
  check_json(r, 401);
  CHECK(json_of(r).root()["error"].as_string().find("authentication required")
        != std::string::npos);
  CHECK(r.after == after_reply::nothing);
  CHECK(jobs_do->peers.empty());
  CHECK(system_does->actions.empty());
  // The node registering itself is fine; a reader may ask for the status.
  reg.node_id = "node-1";
  send(atom::enroll::value, uint64_t{64}, reg, node1);
  check_json(reply_to(64), 201);
  send(atom::action::value, uint64_t{65}, model::system_action::status, outsider);
  check_json(reply_to(65), 205);
}
