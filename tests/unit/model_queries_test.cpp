// The query strings of GET /nodes and GET /updates/<job>/spec (model/queries.hpp):
// what each takes, and the problem (naming the parameter) for what it does not.
#include <doctest/doctest.h>

#include "model/queries.hpp"

using namespace coapfleet::model;

TEST_CASE("GET /nodes query: status and node_id, both optional") {
  auto none = decode_nodes_query("");
  REQUIRE(none.ok());
  CHECK(none.value.status.empty());
  CHECK(none.value.node_id.empty());
  auto both = decode_nodes_query("status=stale&&node_id=n-1");
  REQUIRE(both.ok());
  CHECK(both.value.status == "stale");
  CHECK(both.value.node_id == "n-1");
  auto bad = decode_nodes_query("status=sleeping");
  CHECK(bad.err.field == "status");
  auto sick = decode_nodes_query("health=unhealthy&status=online");
  REQUIRE(sick.ok());
  CHECK(sick.value.health == "unhealthy");
  CHECK(decode_nodes_query("health=healthy").value.health == "healthy");
  auto bad_health = decode_nodes_query("health=sick");
  CHECK(bad_health.err.field == "health");
  CHECK(bad_health.err.error == "query health must be healthy or unhealthy");
  auto unknown = decode_nodes_query("node_id=a&colour=red");
  CHECK(unknown.err.field == "colour");
  CHECK(unknown.err.error.find("expected status, health, node_id, limit, after") != std::string::npos);
  CHECK(none.value.limit == 0);
  CHECK(none.value.after.empty());
}

TEST_CASE("GET /nodes query: pages with limit=N (1..10000) and after=<node_id>") {
  auto page = decode_nodes_query("limit=1000&after=sim-00042");
  REQUIRE(page.ok());
  CHECK(page.value.limit == 1000);
  CHECK(page.value.after == "sim-00042");
  auto first = decode_nodes_query("limit=1");
  REQUIRE(first.ok());
  CHECK(first.value.limit == 1);
  CHECK(first.value.after.empty());
  CHECK(decode_nodes_query("limit=10000").ok());
  for (auto bad : {"limit=0", "limit=10001", "limit=-5", "limit=", "limit", "limit=12x",
                   "limit=99999999999999999999", "limit=1e3", "limit= 5"})
    CHECK_MESSAGE(decode_nodes_query(bad).err.field == "limit", bad);
  // after= alone pages with the default limit; it must be a node id.
  auto after = decode_nodes_query("after=n-1");
  REQUIRE(after.ok());
  CHECK(after.value.limit == default_page_limit);
  CHECK(decode_nodes_query("after=").err.field == "after");
  CHECK(decode_nodes_query("after=a b").err.field == "after");
  CHECK(decode_nodes_query("after=" + std::string(65, 'a')).err.field == "after");
  // Repeated parameters are refused, not silently overridden.
  CHECK(decode_nodes_query("limit=5&limit=6").err.field == "limit");
  CHECK(decode_nodes_query("after=a&after=b").err.field == "after");
}

TEST_CASE("GET /updates/<job>/spec query: node_id=ID only, a valid id") {
  CHECK(decode_spec_query("").ok());
  CHECK(decode_spec_query("").value.empty());
  auto ok = decode_spec_query("node_id=worker-01");
  REQUIRE(ok.ok());
  CHECK(ok.value == "worker-01");
  CHECK(decode_spec_query("node_id").err.field == "node_id");
  CHECK(decode_spec_query("node=x").err.field == "node");
  CHECK(decode_spec_query("node_id=a b").err.field == "node_id");
  CHECK(decode_spec_query("node_id=" + std::string(65, 'a')).err.field == "node_id");
}
