// Deterministic actor tests: the real registry, node, job, supervisor and
// persistence actors on CAF's test_coordinator (we decide when messages are
// delivered and when timers fire), a real SQLite file, and a mock transport
// that records what would go on the wire.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>

#include <caf/scheduler/test_coordinator.hpp>
#include <sqlite3.h>

#include "actors/interfaces.hpp"
#include "common/log.hpp"
#include "actors/server/artifact_store.hpp"
#include "actors/server/job_supervisor.hpp"
#include "actors/server/persistence.hpp"
#include "actors/server/registry.hpp"

using namespace coapfleet;
using namespace std::chrono_literals;

namespace {

/// What the mock transport saw.
struct wire_log {
  std::vector<std::pair<std::string, node_actor>> routes;
  std::vector<std::tuple<job_actor, std::string, uint16_t, model::update_notification>> notes;
  std::vector<std::string> changed;
  std::vector<uint64_t> absorbed;
};

transport_actor::behavior_type mock_transport(transport_actor::pointer,
                                              std::shared_ptr<wire_log> log) {
  return {
    [log](atom::route, std::string& id, node_actor& a) { log->routes.emplace_back(id, a); },
    [log](atom::notify, job_actor& job, std::string& ip, uint16_t port,
          model::update_notification& n) { log->notes.emplace_back(job, ip, port, n); },
    [](atom::reply, uint64_t, coap_reply&) {},
    [](atom::reply, uint64_t, model::fleet_health&) {},
    [](atom::reply, uint64_t, model::system_info&) {},
    [](atom::reply, uint64_t, model::nodes_listing&) {},
    [](atom::artifact, artifact_blob&) {},
    [](atom::route, std::string&, job_actor&) {},
    [](atom::forget, std::string&) {},
    [log](atom::changed, resource& r, urgency) { log->changed.push_back(path_of(r)); },
    [log](atom::absorbed, uint64_t n) { log->absorbed.push_back(n); },
  };
}

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::unique_ptr<caf::scoped_actor> self;
  std::filesystem::path dir;
  std::shared_ptr<wire_log> wire = std::make_shared<wire_log>();
  persistence_actor persistence;
  transport_actor transport;
  registry_actor registry;
  job_supervisor_actor jobs;
  artifact_store_actor artifacts;
  server::liveness_config liveness;
  /// This test's wall clock (the liveness "now"), moved only by advance().
  std::shared_ptr<model::millis> clock = std::make_shared<model::millis>(1'000'000);

  fixture() {
    log::set_level(log::level::error);
    char tmpl[] = "/tmp/coapfleet-actors-XXXXXX";
    dir = ::mkdtemp(tmpl);
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("logger.console", caf::atom("none"));
    cfg.add_message_types<caf::id_block::coapfleet>();
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    self = std::make_unique<caf::scoped_actor>(*sys);
    liveness.now = [clock = clock] { return *clock; };
    liveness.stale_after = 10s;
    liveness.offline_after = 30s;
    start({});
  }

  void start(loaded_state loaded) {
    std::string err;
    auto db = server::store::open((dir / "fleet.db").string(), err);
    REQUIRE_MESSAGE(db, err);
    db->set_busy_timeout(50);  // a test that locks the database waits no longer
    transport = sys->spawn(mock_transport, wire);
    server::persistence_config pc;
    pc.detached = false;
    pc.transport = transport;
    pc.absorbed_every = 2;
    persistence = server::spawn_persistence(*sys, std::move(db), pc);
    server::registry_config rc;
    rc.liveness = liveness;
    registry = server::spawn_registry(*sys, rc, std::move(loaded.nodes), persistence, transport);
    server::job_supervisor_config jc;
    jc.job.default_timeout = 60s;
    artifacts = server::spawn_artifact_store(
      *sys, server::artifact_store_config{(dir / "artifacts").string(), false}, transport);
    jobs = server::spawn_job_supervisor(*sys, jc, std::move(loaded.jobs), registry, persistence,
                                        transport, artifacts);
    sched->run();
  }

  model::millis now() const { return *clock; }

  /// Moves this test's wall clock and the scheduler's timers forward together.
  void advance(std::chrono::milliseconds d) {
    *clock += d.count();
    sched->advance_time(d);
    sched->run();
  }

  /// A health report of node-1 reaching the persistence actor.
  void store_health(int cpu) {
    model::health_report h;
    h.node_id = "node-1";
    h.cpu_percent = cpu;
    caf::anon_send(persistence, atom::health::value, model::put_health{h, now() + cpu});
    sched->run();
  }

  /// Stops the actors (as a restart would) and reads the store back.
  loaded_state restart() {
    auto out = ask<loaded_state>(persistence, atom::load::value);
    for (auto h : {caf::actor_cast<caf::actor>(jobs), caf::actor_cast<caf::actor>(registry),
                   caf::actor_cast<caf::actor>(artifacts),
                   caf::actor_cast<caf::actor>(persistence), caf::actor_cast<caf::actor>(transport)})
      caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
    sched->run();
    wire->routes.clear();
    wire->notes.clear();
    return out;
  }

  ~fixture() {
    for (auto h : {caf::actor_cast<caf::actor>(jobs), caf::actor_cast<caf::actor>(registry),
                   caf::actor_cast<caf::actor>(artifacts),
                   caf::actor_cast<caf::actor>(persistence), caf::actor_cast<caf::actor>(transport)})
      caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
    sched->run();
    self.reset();
    sys.reset();
    std::filesystem::remove_all(dir);
  }

  /// Sends a request, runs the system, and returns the answer (or fails).
  template <class T, class Handle, class... Ts>
  T ask(const Handle& h, Ts&&... xs) {
    T result{};
    auto rh = (*self)->request(h, caf::infinite, std::forward<Ts>(xs)...);
    sched->run();
    bool got = false;
    std::move(rh).receive([&](T& x) { result = std::move(x); got = true; },
                          [&](caf::error& e) { FAIL("unexpected error: " << caf::to_string(e)); });
    REQUIRE(got);
    return result;
  }

  /// Sends a request that must fail; returns the error's message text.
  template <class T, class Handle, class... Ts>
  caf::error ask_error(const Handle& h, Ts&&... xs) {
    caf::error result;
    auto rh = (*self)->request(h, caf::infinite, std::forward<Ts>(xs)...);
    sched->run();
    std::move(rh).receive([&](T&) { FAIL("expected an error"); },
                          [&](caf::error& e) { result = std::move(e); });
    return result;
  }

  registered enroll(const std::string& id, const std::string& ip = "127.1.0.1") {
    model::node_registration reg;
    reg.node_id = id;
    reg.ip_address = ip;
    return ask<registered>(registry, atom::enroll::value, reg, peer{"127.0.0.1", 40000, {}});
  }

  std::vector<model::node_record> nodes(node_filter f = {}) {
    return ask<std::vector<model::node_record>>(registry, atom::list::value, f);
  }
};

}  // namespace

TEST_CASE_FIXTURE(fixture, "registration announces a route, persists, and lists the node") {
  auto r = enroll("node-1");
  CHECK(r.node_id == "node-1");
  CHECK(r.created);
  REQUIRE(wire->routes.size() == 1);
  CHECK(wire->routes[0].first == "node-1");
  auto again = enroll("node-1", "127.1.0.9");
  CHECK_FALSE(again.created);
  CHECK(wire->routes.size() == 1);  // the node actor already exists
  auto list = nodes();
  REQUIRE(list.size() == 1);
  CHECK(list[0].reg.ip_address == "127.1.0.9");
  CHECK(list[0].status == model::node_status::online);
  auto stored = restart();
  REQUIRE(stored.nodes.size() == 1);
  CHECK(stored.nodes[0].reg.ip_address == "127.1.0.9");
}

TEST_CASE_FIXTURE(fixture, "persistence tells the transport how many health reports it took") {
  enroll("node-1");
  wire->absorbed.clear();
  for (int i = 0; i < 5; ++i) {
    model::health_report h;
    h.node_id = "node-1";
    h.cpu_percent = i;
    caf::anon_send(persistence, atom::health::value, model::put_health{h, now() + i});
  }
  sched->run();
  // Every `absorbed_every` (2) reports, as a running count ...
  CHECK(wire->absorbed == std::vector<uint64_t>{2, 4});
  // ... and the rest at the next commit, which stores only the latest.
  caf::anon_send(persistence, atom::tick::value);
  sched->run();
  CHECK(wire->absorbed == std::vector<uint64_t>{2, 4, 5});
  auto stored = restart();
  REQUIRE(stored.nodes.size() == 1);
  CHECK(stored.nodes[0].health.cpu_percent == 4);
}

/// Another connection holding the database's write lock while it lives.
struct db_lock {
  sqlite3* db = nullptr;
  explicit db_lock(const std::filesystem::path& path) {
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
  }
  ~db_lock() {
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }
};

TEST_CASE_FIXTURE(fixture, "a failed commit keeps the latest health for the next one") {
  enroll("node-1");
  // Another connection holds the write lock: the commit fails ...
  auto lock = std::make_unique<db_lock>(dir / "fleet.db");
  store_health(7);
  caf::anon_send(persistence, atom::tick::value);
  sched->run();
  lock.reset();
  // ... and the report is not lost: the health timer retries it.
  REQUIRE(sched->has_pending_timeout());
  sched->trigger_timeouts();
  sched->run();
  auto stored = restart();
  REQUIRE(stored.nodes.size() == 1);
  CHECK(stored.nodes[0].health.cpu_percent == 7);
}

TEST_CASE_FIXTURE(fixture, "a newer report replaces one kept from a failed commit") {
  enroll("node-1");
  auto lock = std::make_unique<db_lock>(dir / "fleet.db");
  store_health(3);
  caf::anon_send(persistence, atom::tick::value);
  sched->run();
  lock.reset();
  store_health(9);
  caf::anon_send(persistence, atom::tick::value);
  sched->run();
  auto stored = restart();
  REQUIRE(stored.nodes.size() == 1);
  CHECK(stored.nodes[0].health.cpu_percent == 9);
}

TEST_CASE_FIXTURE(fixture, "liveness: online, stale, offline, and back online on a report") {
  enroll("node-1");
  enroll("node-2");
  advance(11s);
  auto h = ask<model::fleet_health>(registry, atom::health::value);
  CHECK(h.total_nodes == 2);
  CHECK(h.stale_nodes == 2);
  CHECK(h.online_nodes == 0);
  advance(20s);
  node_filter offline;
  offline.status = "offline";
  CHECK(nodes(offline).size() == 2);
  // node-2 reports (unhealthy): online again, and listed as unhealthy.
  auto node2 = wire->routes[1].second;
  model::health_report report;
  report.node_id = "node-2";
  report.overall_healthy = false;
  report.error_messages = {"Service docker is not running"};
  caf::anon_send(node2, atom::health::value, report, now());
  sched->run();
  h = ask<model::fleet_health>(registry, atom::health::value);
  CHECK(h.online_nodes == 1);
  CHECK(h.offline_nodes == 1);
  CHECK(h.unhealthy_nodes == 1);
  REQUIRE(h.unhealthy.size() == 1);
  CHECK(h.unhealthy[0].error_messages[0] == "Service docker is not running");
  CHECK(h.status == std::string("unhealthy"));  // no node is online and healthy
  // node-1 reports healthy: the fleet is degraded, not unhealthy.
  report.node_id = "node-1";
  report.overall_healthy = true;
  report.error_messages.clear();
  caf::anon_send(wire->routes[0].second, atom::health::value, report, now());
  sched->run();
  h = ask<model::fleet_health>(registry, atom::health::value);
  CHECK(h.healthy_nodes == 1);
  CHECK(h.status == std::string("degraded"));
}

TEST_CASE_FIXTURE(fixture, "a job notifies its targets, follows reports and completes") {
  enroll("node-a", "127.1.0.1");
  enroll("node-b", "127.1.0.2");
  model::job_spec spec;
  spec.name = "python-packages-update";
  spec.version = "2025.09.16";
  spec.package_type = "pip";
  spec.target_nodes = {"all"};
  spec.packages = {"aiocoap==0.4.7"};
  peer op{"127.0.0.1", 40001, {}};
  auto job = ask<model::job_record>(jobs, atom::create::value, spec, op);
  CHECK(job.status == model::job_status::created);
  auto triggered = ask<model::job_record>(jobs, atom::install::value, job.job_id, op);
  CHECK(triggered.status == model::job_status::in_progress);
  REQUIRE(triggered.nodes.size() == 2);
  REQUIRE(wire->notes.size() == 2);
  CHECK(std::get<1>(wire->notes[0]) == "127.1.0.1");
  CHECK(std::get<3>(wire->notes[0]).spec.packages == spec.packages);
  // The transport tells the job that node-a's agent took the notification.
  caf::anon_send(std::get<0>(wire->notes[0]), atom::notified::value, std::string("node-a"), true,
                 std::string());
  sched->run();
  auto st = ask<model::job_record>(jobs, atom::status::value, job.job_id);
  CHECK(st.nodes[0].state == model::node_update_state::notified);
  // Second install is refused.
  auto err = ask_error<model::job_record>(jobs, atom::install::value, job.job_id, op);
  CHECK(err.code() == static_cast<uint8_t>(api_errc::bad_request));
  // Reports walk node-a to succeeded; a backwards step is refused.
  auto report = [&](const std::string& node, model::node_update_state s) {
    model::update_report r;
    r.job_id = job.job_id;
    r.node_id = node;
    r.state = s;
    return r;
  };
  CHECK(ask<bool>(jobs, atom::report::value,
                  report("node-a", model::node_update_state::downloading), op));
  CHECK(ask<bool>(jobs, atom::report::value,
                  report("node-a", model::node_update_state::succeeded), op));
  err = ask_error<bool>(jobs, atom::report::value,
                  report("node-a", model::node_update_state::installing), op);
  CHECK(err.code() == static_cast<uint8_t>(api_errc::bad_request));
  err = ask_error<bool>(jobs, atom::report::value,
                  report("node-z", model::node_update_state::installing), op);
  CHECK(err.code() == static_cast<uint8_t>(api_errc::not_found));
  st = ask<model::job_record>(jobs, atom::status::value, job.job_id);
  CHECK(st.status == model::job_status::in_progress);
  // node-b fails: the job is partially failed.
  CHECK(ask<bool>(jobs, atom::report::value, report("node-b", model::node_update_state::failed),
                  op));
  st = ask<model::job_record>(jobs, atom::status::value, job.job_id);
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
  model::job_spec spec;
  spec.name = "fw";
  spec.version = "1";
  spec.package_type = "script";
  spec.script = "true";
  spec.target_nodes = {"node-a", "node-b", "node-c"};
  spec.timeout_seconds = 30;
  peer op{"127.0.0.1", 40001, {}};
  auto unknown = spec;
  unknown.target_nodes = {"node-a", "ghost"};
  auto ghost_job = ask<model::job_record>(jobs, atom::create::value, unknown, op);
  auto err = ask_error<model::job_record>(jobs, atom::install::value, ghost_job.job_id, op);
  CHECK(err.code() == static_cast<uint8_t>(api_errc::not_found));
  auto job = ask<model::job_record>(jobs, atom::create::value, spec, op);
  ask<model::job_record>(jobs, atom::install::value, job.job_id, op);
  REQUIRE(wire->notes.size() == 3);
  auto job_handle = std::get<0>(wire->notes[0]);
  caf::anon_send(job_handle, atom::notified::value, std::string("node-a"), false,
                 std::string("agent unreachable at 127.1.0.1:5683"));
  caf::anon_send(job_handle, atom::notified::value, std::string("node-b"), true, std::string());
  sched->run();
  auto st = ask<model::job_record>(jobs, atom::status::value, job.job_id);
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
  st = ask<model::job_record>(jobs, atom::status::value, job.job_id);
  CHECK(st.nodes[1].state == model::node_update_state::timed_out);
  CHECK(st.nodes[2].state == model::node_update_state::timed_out);
  CHECK(st.status == model::job_status::failed);
}

TEST_CASE_FIXTURE(fixture, "unknown jobs and invalid specs are errors that name the problem") {
  peer op{"127.0.0.1", 40001, {}};
  auto err = ask_error<model::job_record>(jobs, atom::status::value, std::string("nope"));
  CHECK(err.code() == static_cast<uint8_t>(api_errc::not_found));
  model::job_spec bad;
  bad.name = "x";
  bad.version = "1";
  bad.package_type = "pip";  // no packages
  bad.target_nodes = {"all"};
  err = ask_error<model::job_record>(jobs, atom::create::value, bad, op);
  CHECK(err.code() == static_cast<uint8_t>(api_errc::bad_request));
  REQUIRE(err.context().match_elements<std::string, std::string, std::string, std::string>());
  CHECK(err.context().get_as<std::string>(1) == "packages");
  CHECK(ask<std::vector<model::job_record>>(jobs, atom::list::value).empty());
}

TEST_CASE_FIXTURE(fixture, "an artifact that an unfinished job names keeps its content") {
  peer op{"127.0.0.1", 40001, {}};
  auto upload = [&](const std::string& body) {
    auto named = ask<std::vector<model::job_record>>(jobs, atom::uses::value,
                                                     std::string("fw.bin"));
    artifact_upload up{"fw.bin", body, {}};
    for (auto& j : named)
      up.pins.push_back({j.job_id, j.spec.artifact_sha256});
    return up;
  };
  auto first = ask<artifact_info>(artifacts, atom::upload::value, upload("version one"));
  enroll("node-1");
  model::job_spec spec;
  spec.name = "fw";
  spec.version = "1";
  spec.package_type = "file";
  spec.artifact = "fw.bin";
  spec.target_path = "/opt/fw.bin";
  spec.target_nodes = {"all"};
  auto job = ask<model::job_record>(jobs, atom::create::value, spec, op);
  CHECK(job.spec.artifact_sha256 == first.sha256);
  // Created, not finished: other content is refused, naming the job ...
  auto err = ask_error<artifact_info>(artifacts, atom::upload::value, upload("version two"));
  CHECK(err.code() == static_cast<uint8_t>(api_errc::conflict));
  REQUIRE(err.context().match_elements<std::string, std::string, std::string, std::string>());
  CHECK(err.context().get_as<std::string>(2) == "jobs");
  CHECK(err.context().get_as<std::string>(3) == job.job_id);
  // ... the same content is taken ...
  CHECK(ask<artifact_info>(artifacts, atom::upload::value, upload("version one")).sha256
        == first.sha256);
  // ... and once the job is gone, anything is.
  CHECK(ask<bool>(jobs, atom::remove::value, job.job_id, op));
  CHECK(ask<std::vector<model::job_record>>(jobs, atom::uses::value, std::string("fw.bin"))
          .empty());
  CHECK(ask<artifact_info>(artifacts, atom::upload::value, upload("version two")).sha256
        != first.sha256);
}
