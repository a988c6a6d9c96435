// The node registry: registration (upsert, durable, routed to the transport),
// the node directory and its filters, target resolution for jobs, counts.
// Liveness is node_test.cpp's, restarts of node actors supervision_test.cpp's.
#include "actor_fixture.hpp"

using namespace coapfleet;
using namespace coapfleet::actor_test;

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
