// The registries of two cluster members: each node is owned by one live
// member (rendezvous hashing of its id); what the other member gets for
// it is handed to the owner's registry, and ownership follows the live
// members.
#include "actor_fixture.hpp"
#include "model/ownership.hpp"

using namespace coapfleet;
using namespace coapfleet::actor_test;

namespace {

/// Member "b": a second registry on the same store, with a transport of
/// its own (the fixture's registry is member "a").
struct two_members : fixture {
  std::shared_ptr<wire_log> wire_b = std::make_shared<wire_log>();
  transport_actor transport_b;
  registry_actor b;
  std::string owned_by_a, owned_by_b;

  two_members() {
    transport_b = sys->spawn(mock_transport, wire_b);
    server::registry_config rc;
    rc.liveness = liveness;
    b = server::spawn_registry(*sys, rc, {}, persistence, transport_b);
    wire_b->registry = b;
    for (int n = 0; owned_by_a.empty() || owned_by_b.empty(); ++n) {
      auto id = "node-" + std::to_string(n);
      (model::owner_of(id, {"a", "b"}) == "a" ? owned_by_a : owned_by_b) = id;
    }
    view("a", {"a", "b"});
    view("b", {"a", "b"});
  }

  ~two_members() {
    caf::anon_send_exit(b, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(transport_b, caf::exit_reason::user_shutdown);
    sched->run();
  }

  /// What the membership actor of `me` tells its registry: the live members
  /// (`me` left out: fenced), and the other member's registry while it is live.
  void view(const std::string& me, std::vector<std::string> live) {
    cluster_view v;
    v.me = me;
    v.active = std::find(live.begin(), live.end(), me) != live.end();
    auto other = me == "a" ? std::string{"b"} : std::string{"a"};
    if (std::find(live.begin(), live.end(), other) != live.end())
      v.peers.push_back({other, nullptr,
                         caf::actor_cast<caf::actor>(me == "a" ? b : registry)});
    v.live = std::move(live);
    caf::anon_send(me == "a" ? registry : b, atom::cluster::value, std::move(v));
    sched->run();
  }
};

}  // namespace

TEST_CASE_FIXTURE(two_members, "a node's reports and reads through another member reach its owner's actor") {
  auto r = enroll(owned_by_b);  // through a
  CHECK(r.created);
  CHECK(report(owned_by_b, 42) == 204);  // a has no route: handed to b
  CHECK(wire->routes_of(owned_by_b) == 0);
  CHECK(wire_b->routes_of(owned_by_b) == 1);
  auto rec = node(owned_by_b);  // read through a, answered by b's actor
  CHECK(rec.has_health);
  CHECK(rec.health.cpu_percent == 42);
  CHECK(wire->routes_of(owned_by_b) == 0);
  // a counts it at once (not at the next read of the store).
  CHECK(ask<model::fleet_health>(registry, atom::health::value).total_nodes == 1);
  // A node a owns is served where it is asked.
  enroll(owned_by_a);
  CHECK(report(owned_by_a, 7) == 204);
  CHECK(wire->routes_of(owned_by_a) == 1);
  CHECK(wire_b->routes_of(owned_by_a) == 0);
  // Not registered: the owner says so.
  CHECK(report(owned_by_b + "-ghost", 1) == 404);
}

TEST_CASE_FIXTURE(two_members, "when the owner leaves, its nodes move to the member left, which reads them from the store") {
  enroll(owned_by_b);
  CHECK(report(owned_by_b, 42) == 204);
  REQUIRE(wire_b->active.count(owned_by_b) == 1);
  // b is fenced (its lease lapsed): a alone is live.
  view("b", {"a"});
  view("a", {"a"});
  // b's actor of the node closes (its route first).
  CHECK(wire_b->active.count(owned_by_b) == 0);
  CHECK(std::count(wire_b->unrouted.begin(), wire_b->unrouted.end(), owned_by_b) == 1);
  // a serves it now, from what b's actor stored.
  auto rec = node(owned_by_b);
  CHECK(rec.health.cpu_percent == 42);
  CHECK(wire->routes_of(owned_by_b) == 1);
  CHECK(report(owned_by_b, 43) == 204);
  // A request b gets while fenced goes to a: a deletion through b.
  caf::anon_send(b, atom::remove::value, owned_by_b);
  sched->run();
  auto err = ask_error<model::node_record>(registry, atom::get::value, owned_by_b);
  CHECK(is_api_error(err, api_errc::not_found));
  CHECK(wire->active.count(owned_by_b) == 0);
}

TEST_CASE_FIXTURE(two_members, "a member live in the store without a link owns no node here") {
  // b's lease holds, but a has no link to it (b just started, or was
  // killed and its lease has not lapsed yet): nothing waits for b.
  cluster_view v;
  v.me = "a";
  v.active = true;
  v.live = {"a", "b"};
  caf::anon_send(registry, atom::cluster::value, std::move(v));
  view("b", {"b"});  // nor b to a
  sched->run();
  enroll(owned_by_b);
  CHECK(report(owned_by_b, 1) == 204);
  CHECK(wire->routes_of(owned_by_b) == 1);
  CHECK(wire_b->routes_of(owned_by_b) == 0);
  // Linked again: the node goes back to b (a's actor closes), which reads
  // what a registered from the store at once.
  view("b", {"a", "b"});
  view("a", {"a", "b"});
  CHECK(wire->active.count(owned_by_b) == 0);
  CHECK(report(owned_by_b, 2) == 204);
  CHECK(wire_b->active.count(owned_by_b) == 1);
  CHECK(node(owned_by_b).health.cpu_percent == 2);
}

TEST_CASE_FIXTURE(two_members, "observers of a node's health on any member hear of what its owner takes") {
  auto path = "nodes/" + owned_by_b + "/health";
  enroll(owned_by_b);
  CHECK(report(owned_by_b, 1) == 204);  // handed to b: its actor runs there
  REQUIRE(wire_b->active.count(owned_by_b) == 1);
  // a's transport has an observer of the node's health: a asks b to relay.
  caf::anon_send(registry, atom::observe::value, owned_by_b, true);
  sched->run();
  auto through_b = [&](double cpu) {
    model::health_report h;
    h.node_id = owned_by_b;
    h.cpu_percent = cpu;
    h.overall_healthy = true;
    caf::anon_send(wire_b->active.at(owned_by_b), atom::health::value, std::move(h), now());
    sched->run();
  };
  wire->clear();
  through_b(2);  // a report a's transport never saw (routed on b)
  CHECK(wire->saw_changed(path));
  // A label change through b, and liveness (stale, computed by b) too.
  wire->clear();
  ask<model::string_map>(b, atom::label::value, owned_by_b, model::string_map{{"ring", "a"}});
  CHECK(wire->saw_changed(path));
  wire->clear();
  advance(11s);
  CHECK(wire->saw_changed(path));
  // Ownership moves to a (b fenced), then back: a's observers hear of the
  // move at once, and b relays again once it owns the node again.
  view("b", {"a"});
  view("a", {"a"});
  wire->clear();
  view("b", {"a", "b"});
  view("a", {"a", "b"});
  CHECK(wire->saw_changed(path));
  CHECK(report(owned_by_b, 3) == 204);  // through a: handed to b, which runs it again
  REQUIRE(wire_b->active.count(owned_by_b) == 1);
  wire->clear();
  through_b(4);
  CHECK(wire->saw_changed(path));
  // b saw a gone for a moment (a view without it) and dropped its watch;
  // a, whose view did not change, asks again at its next view.
  view("b", {"b"});
  view("b", {"a", "b"});
  wire->clear();
  through_b(6);
  view("a", {"a", "b"});
  wire->clear();
  through_b(7);
  CHECK(wire->saw_changed(path));
  // The last observer on a left: nothing more is relayed.
  caf::anon_send(registry, atom::observe::value, owned_by_b, false);
  sched->run();
  wire->clear();
  through_b(5);
  CHECK_FALSE(wire->saw_changed(path));
  // A node nobody observes costs the owner nothing per report; a deletion
  // through b reaches a's observers (their next copy is 4.04).
  caf::anon_send(registry, atom::observe::value, owned_by_b, true);
  sched->run();
  wire->clear();
  caf::anon_send(b, atom::remove::value, owned_by_b);
  sched->run();
  CHECK(wire->saw_changed(path));
}

TEST_CASE_FIXTURE(fixture, "an observer of a node's health hears of liveness and label changes") {
  auto path = std::string{"nodes/n-1/health"};
  enroll("n-1");
  CHECK(report("n-1", 1) == 204);
  caf::anon_send(registry, atom::observe::value, std::string{"n-1"}, true);
  sched->run();
  wire->clear();
  advance(11s);  // stale
  CHECK(wire->saw_changed(path));
  wire->clear();
  ask<model::string_map>(registry, atom::label::value, std::string{"n-1"},
                         model::string_map{{"ring", "canary"}});
  CHECK(wire->saw_changed(path));
  caf::anon_send(registry, atom::observe::value, std::string{"n-1"}, false);
  sched->run();
  wire->clear();
  advance(30s);  // offline: nobody observes it any more
  CHECK_FALSE(wire->saw_changed(path));
}

TEST_CASE_FIXTURE(fixture, "a health report crosses members with its absent numbers absent") {
  // What a registry hands to another member's goes through the actor
  // system's serializer: an absent number (NaN) must not arrive as -1.0,
  // and no number may hold it up.
  model::health_report h;
  h.node_id = "n";
  h.cpu_percent = 12.5;
  h.memory_percent = 0.1;
  h.temperature = -std::numeric_limits<double>::infinity();
  h.uptime_seconds = std::numeric_limits<double>::infinity();
  model::node_record rec;
  rec.has_health = true;
  rec.health = h;
  rec.reg.system_info.emplace_back("load", model::scalar::of(model::absent));
  std::vector<char> buf;
  caf::binary_serializer sink{*sys, buf};
  REQUIRE_FALSE(sink(rec));
  model::node_record back;
  caf::binary_deserializer source{*sys, buf};
  REQUIRE_FALSE(source(back));
  CHECK(back.health.cpu_percent == 12.5);
  CHECK(back.health.memory_percent == 0.1);
  CHECK(std::isnan(back.health.disk_percent));
  CHECK(back.health.temperature == -std::numeric_limits<double>::infinity());
  CHECK(back.health.uptime_seconds == std::numeric_limits<double>::infinity());
  REQUIRE(back.reg.system_info.size() == 1);
  CHECK(std::isnan(back.reg.system_info[0].second.number));
}
