// The URI path of a representation and back (path_of, resource_of_path):
// what the transport keys its copies and observations by.
#include <doctest/doctest.h>

#include "actors/replies.hpp"

using namespace coapfleet;

TEST_CASE("resource_of_path is path_of's inverse") {
  for (auto r : {resource{resource_kind::health, {}}, resource{resource_kind::nodes, {}},
                 resource{resource_kind::updates, {}}, resource{resource_kind::system, {}},
                 resource{resource_kind::artifacts, {}}, resource{resource_kind::node_changes, {}},
                 resource{resource_kind::job_changes, {}},
                 resource{resource_kind::node_health, "node-1"},
                 resource{resource_kind::node_health, "a/b"},
                 resource{resource_kind::node_health, "changes"},
                 resource{resource_kind::job_status, "000001-abcdef-123456"}}) {
    CAPTURE(path_of(r));
    resource back;
    REQUIRE(resource_of_path(path_of(r), back));
    CHECK(back == r);
    REQUIRE(resource_of_path("/" + path_of(r), back));
    CHECK(back == r);
  }
}

TEST_CASE("a path that names no representation is none") {
  resource r;
  for (auto path : {"", "/", "nodes/", "nodes//health", "nodes/x", "nodes/x/status",
                    "updates/x/health", "updates//status", "health/x", "artifacts/fw.bin",
                    "keys", "audit", "NODES"}) {
    CAPTURE(path);
    CHECK_FALSE(resource_of_path(path, r));
  }
}
