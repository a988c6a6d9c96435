// Rendezvous hashing of nodes over a cluster's live members.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "model/ownership.hpp"

using namespace coapfleet::model;

namespace {

std::string id(int i) {
  return "node-" + std::to_string(i);
}

}  // namespace

TEST_CASE("ownership: the same answer everywhere; none without members") {
  std::vector<std::string> a{"m1", "m2", "m3"}, b{"m3", "m1", "m2"};
  for (int i = 0; i < 1000; ++i)
    CHECK(owner_of(id(i), a) == owner_of(id(i), b));
  CHECK(owner_of("n", {}).empty());
  CHECK(owner_of("n", {"only"}) == "only");
  // Fixed values: a change of the hash would re-home every node of a running cluster.
  CHECK(rendezvous_score("m1", "node-1") == rendezvous_score("m1", "node-1"));
  CHECK(rendezvous_score("ab", "c") != rendezvous_score("a", "bc"));
}

TEST_CASE("ownership: nodes spread evenly; a member that leaves gives up only its own") {
  std::vector<std::string> three{"m1", "m2", "m3"}, two{"m1", "m2"};
  std::map<std::string, int> count;
  int moved = 0, moved_from_m3 = 0;
  const int n = 30000;
  for (int i = 0; i < n; ++i) {
    auto before = owner_of(id(i), three);
    ++count[before];
    auto after = owner_of(id(i), two);
    if (before != after) {
      ++moved;
      moved_from_m3 += before == "m3";
    }
  }
  for (auto& [m, c] : count) {
    CAPTURE(m);
    CHECK(c > n / 3 * 0.9);
    CHECK(c < n / 3 * 1.1);
  }
  CHECK(moved == count["m3"]);
  CHECK(moved_from_m3 == moved);
  // A member that joins takes about a quarter from three.
  std::vector<std::string> four{"m1", "m2", "m3", "m4"};
  int taken = 0;
  for (int i = 0; i < n; ++i) {
    auto before = owner_of(id(i), three), after = owner_of(id(i), four);
    if (before != after) {
      CHECK(after == "m4");
      ++taken;
    }
  }
  CHECK(taken > n / 4 * 0.9);
  CHECK(taken < n / 4 * 1.1);
}
