// The system actor on the test coordinator, with mock persistence, registry
// and job supervisor: GET /system's facts, POST /system status (the database
// state from a ping made now, the counts from the registry and the
// supervisor), and whether restart and shutdown are allowed.
#include "server_mocks.hpp"

#include "actors/server/system.hpp"
#include "common/clock.hpp"

using namespace coapfleet;
using namespace coapfleet::actor_test;

namespace {

struct system_fixture : coordinated_system {
  std::shared_ptr<persistence_script> database = std::make_shared<persistence_script>();
  std::shared_ptr<registry_script> registry_does = std::make_shared<registry_script>();
  std::shared_ptr<jobs_script> jobs_do = std::make_shared<jobs_script>();
  persistence_actor persistence = own(sys->spawn(mock_persistence, database));
  registry_actor registry = own(sys->spawn(mock_registry, registry_does));
  job_supervisor_actor jobs = own(sys->spawn(mock_jobs, jobs_do));
  model::millis started_at = now_millis() - 90'000;  // up for a minute and a half

  system_fixture() {
    registry_does->count = 7;
    jobs_do->count = 3;
  }

  system_actor spawn(bool allow_actions) {
    server::system_config cfg;
    cfg.allow_actions = allow_actions;
    cfg.started_at = started_at;
    auto out = own(server::spawn_system(*sys, cfg, persistence, registry, jobs));
    sched->run();
    return out;
  }

  /// A status asked now, with the counts and times checked; its database state.
  std::string status_database(const system_actor& system) {
    auto before = now_millis();
    auto s = ask<model::system_status>(system, atom::status::value);
    CHECK(s.nodes == 7);
    CHECK(s.jobs == 3);
    CHECK(s.timestamp >= before);
    CHECK(s.timestamp <= now_millis());
    CHECK(s.uptime_seconds >= 90);
    CHECK(s.uptime_seconds == doctest::Approx((s.timestamp - started_at) / 1000.0));
    return s.database;
  }
};

peer operator_peer() { return peer{"127.0.0.9", 41000, "operator-1"}; }

}  // namespace

TEST_CASE_FIXTURE(system_fixture, "system: info names the version, the uptime and the actions") {
  auto system = spawn(true);
  auto before = now_millis();
  auto info = ask<model::system_info>(system, atom::info::value);
  CHECK(info.version == COAPFLEET_VERSION);
  CHECK(info.timestamp >= before);
  CHECK(info.timestamp <= now_millis());
  CHECK(info.uptime_seconds == doctest::Approx((info.timestamp - started_at) / 1000.0));
  CHECK(info.available_actions == std::vector<std::string>{"restart", "shutdown", "status"});

  auto locked = spawn(false);
  info = ask<model::system_info>(locked, atom::info::value);
  CHECK(info.available_actions == std::vector<std::string>{"status"});
}

TEST_CASE_FIXTURE(system_fixture, "system: status says connected when the database answers a ping now") {
  auto system = spawn(true);
  auto pings = database->pings;
  CHECK(status_database(system) == "connected");
  CHECK(database->pings == pings + 1);  // asked now, not remembered
  database->ping_ok = false;
  CHECK(status_database(system) == "disconnected");
  database->ping_ok = true;
  CHECK(status_database(system) == "connected");
}

TEST_CASE_FIXTURE(system_fixture, "system: a database that fails the ping is disconnected, and the counts still come") {
  auto system = spawn(true);
  database->next = verdict::fail(make_api_error(api_errc::internal, "disk I/O error"));
  CHECK(status_database(system) == "disconnected");
  // No answer within the ping's 5 s.
  database->next = verdict::never();
  auto s = ask_later<model::system_status>(system, atom::status::value);
  sched->run();  // the ping goes out now
  advance(std::chrono::seconds(4));
  CHECK_FALSE(s->done);
  advance(std::chrono::seconds(1));
  REQUIRE(s->done);
  REQUIRE(s->value);
  CHECK(s->value->database == "disconnected");
  CHECK(s->value->nodes == 7);
  CHECK(s->value->jobs == 3);
  // The persistence actor is gone.
  kill(persistence);
  CHECK(status_database(system) == "disconnected");
}

TEST_CASE_FIXTURE(system_fixture, "system: a count that fails fails the status instead of showing 0") {
  auto system = spawn(true);
  registry_does->next = verdict::fail(make_api_error(api_errc::unavailable, "registry busy"));
  auto err = ask_error<model::system_status>(system, atom::status::value);
  CHECK(is_api_error(err, api_errc::unavailable));
  registry_does->next = {};
  kill(jobs);
  err = ask_error<model::system_status>(system, atom::status::value);
  CHECK(err == caf::sec::request_receiver_down);
}

TEST_CASE_FIXTURE(system_fixture, "system: restart and shutdown are allowed unless disabled; status always") {
  auto system = spawn(true);
  for (auto a : {model::system_action::restart, model::system_action::shutdown,
                 model::system_action::status}) {
    CAPTURE(model::to_string(a));
    CHECK(ask<atom::ok>(system, atom::action::value, a, operator_peer()) == atom::ok::value);
  }
  auto locked = spawn(false);
  for (auto a : {model::system_action::restart, model::system_action::shutdown}) {
    CAPTURE(model::to_string(a));
    auto err = ask_error<atom::ok>(locked, atom::action::value, a, operator_peer());
    CHECK(is_api_error(err, api_errc::forbidden));
    auto ctx = error_context(err);
    REQUIRE(ctx.size() == 4);
    CHECK(ctx[0].find(model::to_string(a)) != std::string::npos);
    CHECK(ctx[0].find("--no-system-actions") != std::string::npos);  // names the flag
    CHECK(ctx[1] == "action");
  }
  CHECK(ask<atom::ok>(locked, atom::action::value, model::system_action::status,
                      operator_peer())
        == atom::ok::value);
}
