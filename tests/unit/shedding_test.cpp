// The load-shedding policy of PUT /health (transport/shedding.hpp).
#include <doctest/doctest.h>

#include "transport/shedding.hpp"

using coapfleet::transport::shedder;
using coapfleet::transport::shedding_config;

namespace {

/// How many of `n` requests are refused.
int refused_of(shedder& s, int n) {
  int out = 0;
  for (int i = 0; i < n; ++i)
    out += s.refuse() ? 1 : 0;
  return out;
}

shedding_config small_steps() {
  shedding_config cfg;
  cfg.busy_high_ms = 50;
  cfg.decay_ms = 5;
  cfg.step = 0.1;
  cfg.max_share = 0.5;
  cfg.fill_high = 0.5;
  return cfg;
}

}  // namespace

TEST_CASE("a quiet server refuses nothing") {
  shedder s;
  s.update_socket(0, 0.0, 1);
  s.update_backlog(0);
  CHECK_FALSE(s.active());
  CHECK(refused_of(s, 1000) == 0);
  CHECK(s.admitted_total() == 1000);
}

TEST_CASE("requests waiting in the socket raise the refused share in steps, up to the cap") {
  shedder s{small_steps()};
  s.update_socket(49, 1.0, 1);  // not busy long enough
  CHECK_FALSE(s.active());
  s.update_socket(5000, 0.4, 1);  // busy, but a short queue (a small closed loop)
  CHECK_FALSE(s.active());
  s.update_socket(50, 0.5, 1);
  CHECK(s.share() == doctest::Approx(0.1));
  CHECK(refused_of(s, 100) == 10);  // evenly: every tenth
  for (int i = 0; i < 20; ++i)
    s.update_socket(200, 0.9, 1);
  CHECK(s.share() == doctest::Approx(0.5));  // capped: half still stored
  CHECK(refused_of(s, 100) == 50);
}

TEST_CASE("by default a half-full queue that drains again refuses nothing; a fuller one does") {
  shedder s;  // a server at 80% of its capacity, behind for a while (a commit, a burst)
  for (int i = 0; i < 60; ++i)
    s.update_socket(5 * i, 0.5, 5);
  CHECK_FALSE(s.active());
  CHECK(refused_of(s, 1000) == 0);
  s.update_socket(300, 0.75, 5);  // more than half of the buffer: overloaded
  CHECK(s.active());
  s.update_socket(0, 0.0, 100);
  CHECK_FALSE(s.active());
}

TEST_CASE("the share holds between the marks, and falls with calm time") {
  shedder s{small_steps()};
  for (int i = 0; i < 5; ++i)
    s.update_socket(100, 1.0, 1);
  CHECK(s.share() == doctest::Approx(0.5));
  s.update_socket(10, 0.9, 1);  // still behind, not by much: hold
  CHECK(s.share() == doctest::Approx(0.5));
  s.update_socket(100, 0.3, 1);  // a queue between the marks: hold
  CHECK(s.share() == doctest::Approx(0.5));
  s.update_socket(0, 0.3, 1);  // found empty: one step
  CHECK(s.share() == doctest::Approx(0.4));
  s.update_socket(0, 0.0, 10);  // two steps for 10 ms
  CHECK(s.share() == doctest::Approx(0.2));
  s.update_socket(100, 0.1, 5);  // busy, but a queue under the low mark: falls
  CHECK(s.share() == doctest::Approx(0.1));
}

TEST_CASE("after a long quiet spell the first reading clears the share") {
  shedder s{small_steps()};
  for (int i = 0; i < 5; ++i)
    s.update_socket(100, 1.0, 1);
  CHECK(s.active());
  s.update_socket(0, 0.0, 60000);  // a minute without a reading
  CHECK_FALSE(s.active());
  CHECK(refused_of(s, 100) == 0);
}

TEST_CASE("a busy rule of 0 is off") {
  shedding_config cfg;
  cfg.busy_high_ms = 0;
  shedder s{cfg};
  s.update_socket(100000, 1.0, 1);
  CHECK_FALSE(s.active());
}

TEST_CASE("a full backlog refuses everything until it is down to half") {
  shedding_config cfg;
  cfg.backlog_high = 100;
  shedder s{cfg};
  s.update_backlog(99);
  CHECK_FALSE(s.active());
  s.update_backlog(100);
  CHECK(s.backlog_full());
  CHECK(refused_of(s, 10) == 10);
  s.update_backlog(60);  // still above half
  CHECK(refused_of(s, 10) == 10);
  s.update_backlog(49);
  CHECK_FALSE(s.backlog_full());
  CHECK(refused_of(s, 10) == 0);
  CHECK(s.refused_total() == 20);
}
