// The agent's list of servers (--server, repeated): which one is current,
// and when a call that got no answer moves it on.
#include <doctest/doctest.h>

#include "actors/agent/server_list.hpp"

using coapfleet::agent::server_list;

TEST_CASE("server_list: one server is never failed over from") {
  server_list one("127.1.0.250", 5700, {});
  CHECK(one.current() == "127.1.0.250:5700");
  CHECK(one.others() == 0);
  CHECK_FALSE(one.fail_over_from("127.1.0.250:5700", "test", "does not answer"));
  CHECK(one.host() == "127.1.0.250");
  CHECK(one.port() == 5700);
}

TEST_CASE("server_list: the next server in turn, round and round") {
  server_list three("127.1.0.250", 5700, {{"127.1.0.251", 5701}, {"127.1.0.252", 5702}});
  CHECK(three.others() == 2);
  CHECK(three.fail_over_from("127.1.0.250:5700", "test", "does not answer"));
  CHECK(three.current() == "127.1.0.251:5701");
  CHECK(three.fail_over_from("127.1.0.251:5701", "test", "does not answer"));
  CHECK(three.host() == "127.1.0.252");
  CHECK(three.port() == 5702);
  CHECK(three.fail_over_from("127.1.0.252:5702", "test", "does not answer"));
  CHECK(three.current() == "127.1.0.250:5700");
  CHECK(three.others() == 2);
}

TEST_CASE("server_list: a call to a server left behind already moves nothing") {
  server_list two("127.1.0.250", 5700, {{"127.1.0.251", 5701}});
  // Two calls to .250 got no answer; the first moves on, the second must
  // not move back to .250 (nor skip a member with three).
  CHECK(two.fail_over_from("127.1.0.250:5700", "test", "does not answer"));
  CHECK_FALSE(two.fail_over_from("127.1.0.250:5700", "test", "does not answer"));
  CHECK(two.current() == "127.1.0.251:5701");
  CHECK_FALSE(two.fail_over_from("somewhere-else:1", "test", "does not answer"));
  CHECK(two.current() == "127.1.0.251:5701");
}
