// Node actors: liveness (online → stale → offline when reports stop, online
// again on a report), health as the registry summarizes it for GET /health;
// virtual node actors (started when the node talks or is read, closed when
// it goes quiet, nothing lost in between).
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
  CHECK(nodes("offline").size() == 2);
  // node-2 reports (unhealthy): online again, and listed as unhealthy.
  CHECK(report("node-2", 5, false, {"Service docker is not running"}) == 204);
  h = ask<model::fleet_health>(registry, atom::health::value);
  CHECK(h.online_nodes == 1);
  CHECK(h.offline_nodes == 1);
  CHECK(h.unhealthy_nodes == 1);
  REQUIRE(h.unhealthy.size() == 1);
  CHECK(h.unhealthy[0].error_messages[0] == "Service docker is not running");
  CHECK(h.status == std::string("unhealthy"));  // no node is online and healthy
  // node-1 reports healthy: the fleet is degraded, not unhealthy.
  CHECK(report("node-1", 5) == 204);
  h = ask<model::fleet_health>(registry, atom::health::value);
  CHECK(h.healthy_nodes == 1);
  CHECK(h.status == std::string("degraded"));
}

TEST_CASE_FIXTURE(fixture, "a node's record tells the liveness of the moment it is read") {
  enroll("node-1");
  CHECK(wire->routes.empty());  // registered, not talking yet: no actor
  auto n = ask<model::node_record>(registry, atom::get::value, std::string("node-1"));
  CHECK(n.reg.ip_address == "127.1.0.1");
  auto node = wire->node("node-1");  // read: its actor is active
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

TEST_CASE_FIXTURE(fixture, "a node's actor starts when it reports, is closed when quiet, and nothing is lost") {
  enroll("node-1");
  enroll("node-2", "127.1.0.2");
  CHECK(wire->routes.empty());
  // The first report goes to the registry (no route): it starts the actor,
  // routes the transport to it, hands it the report and answers 2.04.
  CHECK(report("node-1", 11) == 204);
  REQUIRE(wire->routes_of("node-1") == 1);
  REQUIRE(wire->health_answers.size() == 1);
  CHECK(wire->health_answers[0].second.code == 204);
  auto first = wire->node("node-1");
  // Later reports go to the actor directly.
  CHECK(report("node-1", 12) == 204);
  CHECK(node("node-1").health.cpu_percent == 12);
  CHECK(wire->health_answers.size() == 1);
  // Quiet for idle_after (40 s): unrouted, then closed; the node stays
  // registered and keeps its latest health (read back from the store).
  advance(41s);
  CHECK(wire->unrouted == std::vector<std::string>{"node-1"});
  CHECK(wire->active.empty());
  auto rec = node("node-1");  // a read starts a new actor that reads the store
  CHECK(rec.health.cpu_percent == 12);
  CHECK(rec.status == model::node_status::offline);
  CHECK(wire->node("node-1") != first);
  // Reports of an unknown node are 4.04 naming it, and start nothing.
  model::health_report ghost;
  ghost.node_id = "ghost";
  CHECK(report(ghost, now()) == 404);
  CHECK(wire->routes_of("ghost") == 0);
  // GET /health counts every node, active or not.
  auto h = ask<model::fleet_health>(registry, atom::health::value);
  CHECK(h.total_nodes == 2);
  CHECK(h.offline_nodes == 2);
  CHECK(h.healthy_nodes == 1);
}

TEST_CASE_FIXTURE(fixture, "a report while the actor is being closed goes to it and keeps it") {
  enroll("node-1");
  CHECK(report("node-1", 1) == 204);
  auto actor = wire->node("node-1");
  // The registry asked the transport to unroute; before the transport
  // confirms, the node reports again through the registry (no route).
  *clock += 40'000;
  sched->advance_time(40s);
  run_all_but(transport);
  CHECK(wire->active.count("node-1") == 1);  // the unroute waits in the transport's mailbox
  auto id = ++report_ids;
  model::health_report h;
  h.node_id = "node-1";
  h.cpu_percent = 2;
  caf::anon_send(registry, atom::health::value, id, h, now());
  sched->run();
  // The same actor took it, and it is routed again after the unroute.
  CHECK(wire->node("node-1") == actor);
  CHECK(wire->active.count("node-1") == 1);
  CHECK(node("node-1").health.cpu_percent == 2);
  CHECK(wire->routes_of("node-1") == 2);
}

TEST_CASE_FIXTURE(fixture, "a burst of reports costs actors only while it lasts") {
  for (int i = 0; i < 50; ++i)
    enroll("node-" + std::to_string(i));
  for (int i = 0; i < 50; ++i)
    CHECK(report("node-" + std::to_string(i), i) == 204);
  CHECK(wire->active.size() == 50);
  advance(41s);
  CHECK(wire->active.empty());
  CHECK(wire->unrouted.size() == 50);
  // Every report is in the store.
  auto stored = stored_nodes();
  REQUIRE(stored.size() == 50);
  for (auto& n : stored)
    CHECK(n.has_health);
}
