// Labels and the version inventory in the store: written with the
// registration or on their own, read back by node, listing and start-up.
#include "store/store.hpp"

#include "store_fixture.hpp"

#include <doctest/doctest.h>

using namespace coapfleet;
using namespace coapfleet::server;
using namespace coapfleet::server::testing;

TEST_CASE("traits: labels and inventory are stored with the node and on their own") {
  temp_db db;
  auto s = open_ok(db.path());
  model::put_node n;
  n.reg.node_id = "node-1";
  n.reg.ip_address = "127.1.0.1";
  n.reg.labels = {{"site", "berlin"}};
  n.reg.inventory = {{"fw", "1.1.0"}};
  n.reg.system_info = {{"arch", model::scalar::of(std::string("arm64"))},
                       {"os", model::scalar::of(std::string("linux"))}};
  model::put_node bare;
  bare.reg.node_id = "node-2";
  bare.reg.ip_address = "127.1.0.2";
  REQUIRE(s->apply({n, bare}));
  auto one = s->load_node("node-1");
  REQUIRE(one);
  CHECK(one->reg.labels == n.reg.labels);
  CHECK(one->reg.inventory == n.reg.inventory);
  auto briefs = s->load_briefs();
  REQUIRE(briefs.size() == 2);
  auto& b = briefs[0].node_id == "node-1" ? briefs[0] : briefs[1];
  auto& c = briefs[0].node_id == "node-1" ? briefs[1] : briefs[0];
  CHECK(b.traits.labels == n.reg.labels);
  CHECK(b.traits.inventory == n.reg.inventory);
  CHECK(b.traits.arch == "arm64");
  CHECK(b.traits.os == "linux");
  CHECK(c.traits.empty());

  REQUIRE(s->apply({model::put_node_traits{"node-1", {{"ring", "canary"}}, {{"fw", "1.2.0"}},
                                                  {{"ring", "canary"}}},
                    model::put_node_traits{"ghost", {{"a", "b"}}, {}, {}}}));
  one = s->load_node("node-1");
  REQUIRE(one);
  CHECK(one->reg.labels == model::string_map{{"ring", "canary"}});
  CHECK(one->reg.inventory == model::string_map{{"fw", "1.2.0"}});
  auto again = s->load_briefs();
  auto& a1 = again[0].node_id == "node-1" ? again[0] : again[1];
  CHECK(a1.traits.operator_labels == model::string_map{{"ring", "canary"}});
  CHECK_FALSE(s->load_node("ghost"));
  // Emptied: NULL again.
  REQUIRE(s->apply({model::put_node_traits{"node-1", {}, {}, {}}}));
  CHECK(raw(db.path(), "SELECT COUNT(*) FROM nodes WHERE labels IS NULL") == "2");
}

TEST_CASE("traits: a v5 database gains the columns and keeps its nodes" * doctest::test_suite("sqlite")) {
  temp_db db;
  {
    auto s = open_ok(db.path());
    model::put_node n;
    n.reg.node_id = "node-1";
    n.reg.ip_address = "127.1.0.1";
    REQUIRE(s->apply({n}));
  }
  undo_v6(db.path());
  REQUIRE(raw(db.path(), "PRAGMA user_version") == "5");
  auto s = open_ok(db.path());
  CHECK(raw(db.path(), "PRAGMA user_version") == "9");
  auto nodes = s->load_nodes();
  REQUIRE(nodes.size() == 1);
  CHECK(nodes[0].reg.labels.empty());
  REQUIRE(s->apply({model::put_node_traits{"node-1", {{"site", "x"}}, {}, {}}}));
  CHECK(s->load_node("node-1")->reg.labels == model::string_map{{"site", "x"}});
}
