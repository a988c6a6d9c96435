// The persistence actor: health telemetry is group-committed (only the latest
// report of a node is written), the transport is told how many reports were
// taken, and a failed commit loses nothing. A commit is made to fail by
// another connection holding the write lock.
#include "actor_fixture.hpp"

using namespace coapfleet;
using namespace coapfleet::actor_test;

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
  restart();
  auto stored = stored_nodes();
  REQUIRE(stored.size() == 1);
  CHECK(stored[0].health.cpu_percent == 4);
}

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
  restart();
  auto stored = stored_nodes();
  REQUIRE(stored.size() == 1);
  CHECK(stored[0].health.cpu_percent == 7);
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
  restart();
  auto stored = stored_nodes();
  REQUIRE(stored.size() == 1);
  CHECK(stored[0].health.cpu_percent == 9);
}

TEST_CASE_FIXTURE(fixture, "an older report arriving late does not replace a newer one") {
  // Two actors of one node (one closing with reports queued, its successor)
  // may hand reports over out of order.
  enroll("node-1");
  auto send = [&](double cpu, model::millis at) {
    model::health_report h;
    h.node_id = "node-1";
    h.cpu_percent = cpu;
    caf::anon_send(persistence, atom::health::value, model::put_health{h, at});
    sched->run();
  };
  send(20, now() + 2000);
  send(10, now() + 1000);  // older, later: kept out of the pending batch
  caf::anon_send(persistence, atom::tick::value);
  sched->run();
  send(5, now() + 500);  // older than the stored one: kept out of the table
  caf::anon_send(persistence, atom::tick::value);
  sched->run();
  restart();
  auto stored = stored_nodes();
  REQUIRE(stored.size() == 1);
  CHECK(stored[0].health.cpu_percent == 20);
  CHECK(stored[0].health_at == now() + 2000);
}
