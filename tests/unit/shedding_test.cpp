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

}  // namespace

TEST_CASE("a quiet server refuses nothing") {
  shedder s;
  s.update_queue(0.0);
  s.update_backlog(0);
  CHECK_FALSE(s.active());
  CHECK(refused_of(s, 1000) == 0);
  CHECK(s.admitted_total() == 1000);
}

TEST_CASE("a full receive queue raises the refused share in steps, up to the cap") {
  shedding_config cfg;
  cfg.queue_high = 0.25;
  cfg.queue_low = 0.05;
  cfg.step = 0.1;
  cfg.max_share = 0.5;
  shedder s{cfg};
  s.update_queue(0.3);
  CHECK(s.share() == doctest::Approx(0.1));
  CHECK(refused_of(s, 100) == 10);  // evenly: every tenth
  for (int i = 0; i < 20; ++i)
    s.update_queue(1.0);
  CHECK(s.share() == doctest::Approx(0.5));  // capped: half still stored
  CHECK(refused_of(s, 100) == 50);
  // Between the marks the share holds; below the low mark it falls.
  s.update_queue(0.1);
  CHECK(s.share() == doctest::Approx(0.5));
  for (int i = 0; i < 5; ++i)
    s.update_queue(0.0);
  CHECK(s.share() == doctest::Approx(0.0));
  CHECK_FALSE(s.active());
  CHECK(refused_of(s, 100) == 0);
}

TEST_CASE("a queue rule of 1 is off") {
  shedding_config cfg;
  cfg.queue_high = 1.0;
  shedder s{cfg};
  s.update_queue(1.0);
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
