// Node actors: liveness (online → stale → offline when reports stop, online
// again on a report), health as the registry summarizes it for GET /health.
#include "actor_fixture.hpp"

using namespace coapfleet;
using namespace coapfleet::actor_test;

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
  auto node2 = wire->node("node-2");
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
  caf::anon_send(wire->node("node-1"), atom::health::value, report, now());
  sched->run();
  h = ask<model::fleet_health>(registry, atom::health::value);
  CHECK(h.healthy_nodes == 1);
  CHECK(h.status == std::string("degraded"));
}

TEST_CASE_FIXTURE(fixture, "a node's record tells the liveness of the moment it is read") {
  enroll("node-1");
  auto node = wire->node("node-1");
  REQUIRE(node);
  CHECK(ask<model::node_record>(node, atom::get::value).status == model::node_status::online);
  // The clock moves past stale_after, but no timer has fired yet: the record
  // is computed when read, not taken from the last tick.
  shift_clock(11'000);
  auto rec = ask<model::node_record>(node, atom::get::value);
  CHECK(rec.status == model::node_status::stale);
  CHECK(rec.last_seen == fake_epoch);
  CHECK_FALSE(rec.has_health);
  // A re-registration counts as hearing from the node.
  model::node_registration reg;
  reg.node_id = "node-1";
  reg.ip_address = "127.1.0.5";
  caf::anon_send(node, atom::enroll::value, reg, now());
  sched->run();
  rec = ask<model::node_record>(node, atom::get::value);
  CHECK(rec.status == model::node_status::online);
  CHECK(rec.reg.ip_address == "127.1.0.5");
  CHECK(rec.last_seen == now());
}

TEST_CASE_FIXTURE(fixture, "liveness of a fleet takes one timer, not one per node, and none once all are offline") {
  for (int i = 0; i < 200; ++i)
    enroll("node-" + std::to_string(i));
  // A few timers at most (the liveness deadline, announcements), whatever the fleet size.
  CHECK(sched->clock().schedule().size() <= 3);
  advance(11s);
  auto h = ask<model::fleet_health>(registry, atom::health::value);
  CHECK(h.stale_nodes == 200);
  CHECK(sched->clock().schedule().size() <= 3);
  advance(20s);
  h = ask<model::fleet_health>(registry, atom::health::value);
  CHECK(h.offline_nodes == 200);
  // Nothing can change any more without a report: no timer is left.
  advance(1s);
  CHECK(sched->clock().schedule().empty());
}
