// The node registry: registration (upsert, durable; no actor until the node talks),
// the node directory and its filters, target resolution for jobs, counts.
// Liveness is node_test.cpp's, restarts of node actors supervision_test.cpp's.
#include "actor_fixture.hpp"

using namespace coapfleet;
using namespace coapfleet::actor_test;

TEST_CASE_FIXTURE(fixture, "registration persists and lists the node, and starts no actor") {
  auto r = enroll("node-1");
  CHECK(r.node_id == "node-1");
  CHECK(r.created);
  CHECK(wire->routes.empty());  // its actor starts when it talks or is read
  auto again = enroll("node-1", "127.1.0.9");
  CHECK_FALSE(again.created);
  CHECK(wire->routes.empty());
  auto list = nodes();
  REQUIRE(list.size() == 1);
  CHECK(list[0].reg.ip_address == "127.1.0.9");
  CHECK(list[0].status == model::node_status::online);
  // Active now (it was read): a re-registration reaches its actor.
  CHECK(wire->routes.size() == 1);
  enroll("node-1", "127.1.0.10");
  CHECK(node("node-1").reg.ip_address == "127.1.0.10");
  CHECK(wire->routes.size() == 1);
  restart();
  auto stored = stored_nodes();
  REQUIRE(stored.size() == 1);
  CHECK(stored[0].reg.ip_address == "127.1.0.10");
}

TEST_CASE_FIXTURE(fixture, "start-up reads the nodes' briefs: liveness, health and addresses") {
  enroll("node-a", "127.1.0.1");
  enroll("node-b", "127.1.0.2");
  enroll("node-c", "127.1.0.3");
  CHECK(report("node-a", 10) == 204);
  CHECK(report("node-b", 20, false, {"disk full", "fan"}) == 204);
  auto loaded = restart();
  REQUIRE(loaded.nodes.size() == 3);
  std::sort(loaded.nodes.begin(), loaded.nodes.end(),
            [](const auto& a, const auto& b) { return a.node_id < b.node_id; });
  CHECK(loaded.nodes[0].has_health);
  CHECK(loaded.nodes[0].healthy);
  CHECK(loaded.nodes[1].has_health);
  CHECK_FALSE(loaded.nodes[1].healthy);
  CHECK(loaded.nodes[1].error_messages == std::vector<std::string>{"disk full", "fan"});
  CHECK(loaded.nodes[1].ip_address == "127.1.0.2");
  CHECK_FALSE(loaded.nodes[2].has_health);
  start(std::move(loaded));
  CHECK(wire->routes.empty());  // no node actor at start
  auto h = ask<model::fleet_health>(registry, atom::health::value);
  CHECK(h.total_nodes == 3);
  CHECK(h.healthy_nodes == 1);
  CHECK(h.unhealthy_nodes == 1);
  REQUIRE(h.unhealthy.size() == 1);
  CHECK(h.unhealthy[0].node_id == "node-b");
  auto targets = ask<std::vector<job_target>>(registry, atom::resolve::value,
                                              std::vector<std::string>{"node-c"});
  REQUIRE(targets.size() == 1);
  CHECK(targets[0].ip_address == "127.1.0.3");
  // A record read after the restart is the stored one.
  CHECK(node("node-b").health.cpu_percent == 20);
}

TEST_CASE_FIXTURE(fixture, "job targets resolve sorted and once each; unknown ids are named") {
  enroll("node-b", "127.1.0.2");
  enroll("node-a", "127.1.0.1");
  CHECK(ask<uint32_t>(registry, atom::count::value) == 2);
  auto all = ask<std::vector<job_target>>(registry, atom::resolve::value,
                                          std::vector<std::string>{"all"});
  REQUIRE(all.size() == 2);
  auto some = ask<std::vector<job_target>>(registry, atom::resolve::value,
                                           std::vector<std::string>{"node-b", "node-a", "node-b"});
  REQUIRE(some.size() == 2);
  CHECK(some[0].node_id == "node-a");
  CHECK(some[0].ip_address == "127.1.0.1");
  CHECK(some[1].node_id == "node-b");
  auto err = ask_error<std::vector<job_target>>(
    registry, atom::resolve::value, std::vector<std::string>{"node-a", "ghost", "spook"});
  CHECK(is_api_error(err, api_errc::not_found));
  auto ctx = error_context(err);
  REQUIRE(ctx.size() == 4);
  CHECK(ctx[0].find("ghost, spook") != std::string::npos);
  CHECK(ctx[1] == "target_nodes");
}

namespace {

/// The registry's maintained counts (GET /health) as the node actors have
/// their records now: the two must agree.
void check_counts_match_records(fixture& f) {
  auto records = f.nodes();
  // GET /health's counts, kept as summaries came, equal a recount.
  auto h = f.ask<model::fleet_health>(f.registry, atom::health::value);
  uint32_t online = 0, stale = 0, offline = 0, healthy = 0, unhealthy = 0;
  for (auto& r : records) {
    online += r.status == model::node_status::online;
    stale += r.status == model::node_status::stale;
    offline += r.status == model::node_status::offline;
    healthy += r.has_health && r.health.overall_healthy;
    unhealthy += r.has_health && !r.health.overall_healthy;
  }
  CHECK(h.total_nodes == records.size());
  CHECK(h.online_nodes == online);
  CHECK(h.stale_nodes == stale);
  CHECK(h.offline_nodes == offline);
  CHECK(h.healthy_nodes == healthy);
  CHECK(h.unhealthy_nodes == unhealthy);
  CHECK(h.unhealthy.size() == std::min<size_t>(unhealthy, f.health_list_max));
  CHECK(h.unhealthy_more == unhealthy - h.unhealthy.size());
}

}  // namespace

TEST_CASE_FIXTURE(fixture, "the counts follow reports, liveness and re-registration without asking nodes") {
  enroll("node-b", "127.1.0.2");
  enroll("node-a", "127.1.0.1");
  check_counts_match_records(*this);
  // A report: its health and last_seen show, announced once until rendered.
  wire->clear();
  CHECK(report("node-a", 17) == 204);
  CHECK(report("node-a", 18) == 204);
  CHECK(std::count(wire->changed.begin(), wire->changed.end(), "nodes") == 1);
  CHECK(nodes().front().health.cpu_percent == 18);
  check_counts_match_records(*this);
  CHECK(report("node-a", 18, false, {"disk full"}) == 204);
  CHECK(std::count(wire->changed.begin(), wire->changed.end(), "nodes") == 1);
  CHECK(wire->saw_changed("health"));
  advance(1s);  // changes of GET /nodes are announced at most every 250 ms
  CHECK(std::count(wire->changed.begin(), wire->changed.end(), "nodes") == 2);
  check_counts_match_records(*this);
  // Liveness: both go stale, then node-b offline; the listing says so.
  advance(11s);
  check_counts_match_records(*this);
  advance(20s);
  auto listed = nodes();
  REQUIRE(listed.size() == 2);
  CHECK(listed[1].status == model::node_status::offline);
  check_counts_match_records(*this);
  // A re-registration shows as soon as it is answered.
  enroll("node-b", "127.1.0.77");
  listed = nodes();
  CHECK(listed[1].reg.ip_address == "127.1.0.77");
  CHECK(listed[1].status == model::node_status::online);
  check_counts_match_records(*this);
  // After a restart of the server, the listing is the stored one.
  start(restart());
  CHECK(nodes().size() == 2);
  check_counts_match_records(*this);
}

TEST_CASE_FIXTURE(fixture, "each copy of /nodes/changes lists the nodes changed since the previous one") {
  auto copy = [this](uint64_t id) {
    caf::anon_send(registry, atom::changes::value, id);
    sched->run();
    REQUIRE_FALSE(wire->changes.empty());
    CHECK(wire->changes.back().first == id);
    return wire->changes.back().second;
  };
  enroll("node-b");
  enroll("node-a");
  CHECK(report("node-a", 1) == 204);
  auto c = copy(1);
  CHECK(c.from == 0);
  CHECK(c.to == 1);
  CHECK_FALSE(c.reset);
  CHECK(c.ids == std::vector<std::string>{"node-a", "node-b"});  // sorted, once each
  CHECK(report("node-b", 2) == 204);
  CHECK(report("node-b", 3) == 204);
  c = copy(2);
  CHECK(c.from == 1);
  CHECK(c.to == 2);
  CHECK(c.ids == std::vector<std::string>{"node-b"});
  c = copy(3);  // nothing changed
  CHECK(c.from == 2);
  CHECK(c.ids.empty());
  advance(11s);  // both stale: a change of each
  CHECK(copy(4).ids == std::vector<std::string>{"node-a", "node-b"});
  // More than max_changes (5) changed: a reset, no list; then it starts again.
  for (int i = 0; i < 6; ++i)
    enroll("node-" + std::to_string(i));
  c = copy(5);
  CHECK(c.reset);
  CHECK(c.ids.empty());
  CHECK(report("node-3", 1) == 204);
  c = copy(6);
  CHECK_FALSE(c.reset);
  CHECK(c.ids == std::vector<std::string>{"node-3"});
}

TEST_CASE_FIXTURE(fixture, "GET /health lists the first unhealthy nodes by id and counts the rest") {
  // Its rendering is what every registration's 2.01 waits for: it must not
  // grow with the number of unhealthy nodes.
  health_list_max = 3;
  start(restart());
  for (auto id : {"n-5", "n-1", "n-4", "n-2", "n-3", "n-6"})
    enroll(id, "127.1.0.1");
  for (auto id : {"n-5", "n-1", "n-4", "n-3", "n-6"})
    CHECK(report(id, 10, false, {std::string(id) + " disk full"}) == 204);
  CHECK(report("n-2", 10) == 204);
  auto h = ask<model::fleet_health>(registry, atom::health::value);
  CHECK(h.unhealthy_nodes == 5);
  REQUIRE(h.unhealthy.size() == 3);
  CHECK(h.unhealthy[0].node_id == "n-1");
  CHECK(h.unhealthy[1].node_id == "n-3");
  CHECK(h.unhealthy[2].node_id == "n-4");
  CHECK(h.unhealthy[2].error_messages == std::vector<std::string>{"n-4 disk full"});
  CHECK(h.unhealthy_more == 2);
  check_counts_match_records(*this);
  auto body = model::encode_fleet_health(h);
  CHECK(body.find("\"unhealthy_more\":2") != std::string::npos);
  CHECK(body.find("\"unhealthy_listing\":\"/nodes?health=unhealthy\"") != std::string::npos);
  // Healthy again: the next one moves up, nothing is left over.
  CHECK(report("n-1", 10) == 204);
  CHECK(report("n-3", 10) == 204);
  h = ask<model::fleet_health>(registry, atom::health::value);
  REQUIRE(h.unhealthy.size() == 3);
  CHECK(h.unhealthy[0].node_id == "n-4");
  CHECK(h.unhealthy_more == 0);
  CHECK(model::encode_fleet_health(h).find("unhealthy_more") == std::string::npos);
}

TEST_CASE_FIXTURE(fixture, "a late summary with older health changes neither counts nor health") {
  // A node's actor closed with reports still queued may hand its summary
  // over after its successor's newer one.
  enroll("late-1", "127.1.0.1");
  CHECK(report("late-1", 10, true) == 204);
  auto before = ask<model::fleet_health>(registry, atom::health::value);
  CHECK(before.healthy_nodes == 1);
  node_summary stale;
  stale.node_id = "late-1";
  stale.has_health = true;
  stale.healthy = false;
  stale.error_messages = {"old news"};
  stale.last_seen = 1;
  stale.health_at = 1;
  caf::anon_send(registry, atom::summary::value, stale);
  sched->run();
  auto after = ask<model::fleet_health>(registry, atom::health::value);
  CHECK(after.healthy_nodes == 1);
  CHECK(after.unhealthy_nodes == 0);
  CHECK(after.unhealthy.empty());
  CHECK(after.online_nodes == 1);  // nor liveness: last_seen only moves forward
  check_counts_match_records(*this);
}

namespace {

registered enroll_with(actor_test::fixture& f, const std::string& id, model::string_map labels,
                       const std::string& arch = {}, bool inventory = false,
                       model::string_map inv = {}) {
  model::node_registration reg;
  reg.node_id = id;
  reg.ip_address = "127.1.0.1";
  reg.labels = std::move(labels);
  if (!arch.empty())
    reg.system_info = {{"arch", model::scalar::of(arch)}};
  reg.inventory_given = inventory;
  reg.inventory = std::move(inv);
  return f.ask<registered>(f.registry, atom::enroll::value, reg, peer{"127.0.0.1", 40000, {}});
}

std::vector<std::string> ids_of(const std::vector<job_target>& ts) {
  std::vector<std::string> out;
  for (auto& t : ts)
    out.push_back(t.node_id);
  return out;
}

}  // namespace

TEST_CASE_FIXTURE(fixture, "labels: registrations merge, operators change, targets match") {
  enroll_with(*this, "n-1", {{"ring", "canary"}, {"site", "berlin"}}, "arm64");
  enroll_with(*this, "n-2", {{"site", "berlin"}}, "x86_64");
  enroll_with(*this, "n-3", {{"site", "paris"}}, "arm64");
  model::job_spec spec;
  spec.target_labels = {{"site", "berlin"}};
  auto berlin = ask<std::vector<job_target>>(registry, atom::resolve::value, spec);
  CHECK(ids_of(berlin) == std::vector<std::string>{"n-1", "n-2"});
  spec.target_labels = {{"site", "berlin"}, {"system_info.arch", "arm64"}};
  CHECK(ids_of(ask<std::vector<job_target>>(registry, atom::resolve::value, spec))
        == std::vector<std::string>{"n-1"});
  spec.target_nodes = {"n-3"};  // named besides the labels
  CHECK(ids_of(ask<std::vector<job_target>>(registry, atom::resolve::value, spec))
        == std::vector<std::string>{"n-1", "n-3"});
  spec.target_nodes = {"ghost"};
  CHECK(is_api_error(ask_error<std::vector<job_target>>(registry, atom::resolve::value, spec),
                     api_errc::not_found));

  // An operator's label stays when the node registers again without it.
  auto now = ask<model::string_map>(registry, atom::label::value, std::string{"n-2"},
                                    model::string_map{{"ring", "canary"}, {"site", ""}});
  CHECK(now == model::string_map{{"ring", "canary"}});
  enroll_with(*this, "n-2", {{"floor", "3"}}, "x86_64");
  CHECK(node("n-2").reg.labels == model::string_map{{"floor", "3"}, {"ring", "canary"}});
  spec.target_nodes.clear();
  spec.target_labels = {{"ring", "canary"}};
  CHECK(ids_of(ask<std::vector<job_target>>(registry, atom::resolve::value, spec))
        == std::vector<std::string>{"n-1", "n-2"});
  CHECK(is_api_error(ask_error<model::string_map>(registry, atom::label::value,
                                                  std::string{"ghost"}, model::string_map{}),
                     api_errc::not_found));

  // A removal is an operator's label too: the node's own "site" stays away
  // when it registers again with it.
  enroll_with(*this, "n-3", {{"site", "paris"}}, "arm64");
  ask<model::string_map>(registry, atom::label::value, std::string{"n-3"},
                         model::string_map{{"site", ""}});
  enroll_with(*this, "n-3", {{"site", "paris"}}, "arm64");
  CHECK(node("n-3").reg.labels.empty());

  // Durable, and read back at start-up.
  start(restart());
  CHECK(ids_of(ask<std::vector<job_target>>(registry, atom::resolve::value, spec))
        == std::vector<std::string>{"n-1", "n-2"});
  CHECK(node("n-2").reg.labels == model::string_map{{"floor", "3"}, {"ring", "canary"}});
}

TEST_CASE_FIXTURE(fixture, "inventory: sent with a registration or a success, kept otherwise") {
  enroll_with(*this, "n-1", {}, {}, true, {{"fw", "1.1.0"}});
  CHECK(node("n-1").reg.inventory == model::string_map{{"fw", "1.1.0"}});
  enroll_with(*this, "n-1", {});  // no inventory sent: the known one stays
  CHECK(node("n-1").reg.inventory == model::string_map{{"fw", "1.1.0"}});
  ask<atom::ok>(registry, atom::inventory::value, std::string{"n-1"},
                model::string_map{{"fw", "1.2.0"}});
  CHECK(node("n-1").reg.inventory == model::string_map{{"fw", "1.2.0"}});
  model::job_spec spec;
  spec.target_labels = {{"inventory.fw", "1.2.0"}};
  CHECK(ids_of(ask<std::vector<job_target>>(registry, atom::resolve::value, spec))
        == std::vector<std::string>{"n-1"});
  start(restart());
  CHECK(node("n-1").reg.inventory == model::string_map{{"fw", "1.2.0"}});
  enroll_with(*this, "n-1", {}, {}, true, {});  // sent empty: nothing installed
  CHECK(node("n-1").reg.inventory.empty());
}
