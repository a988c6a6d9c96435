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
  auto unknown = decode_nodes_query("node_id=a&colour=red");
  CHECK(unknown.err.field == "colour");
  CHECK(unknown.err.error.find("expected status, node_id") != std::string::npos);
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
