// The per-source budgets behind 4.29 (transport/budget.hpp) and the token
// bucket under them: a burst passes, the next request is refused once with
// the seconds until a token comes back, later ones within that second are
// dropped, tokens come back at the rate, sources beyond the table share one
// bucket, and a sweep forgets only sources whose bucket is whole again.
#include <doctest/doctest.h>

#include "common/token_bucket.hpp"
#include "transport/budget.hpp"

using namespace coapfleet;
using transport::source_budgets;
using verdict = source_budgets::verdict;

namespace {

source_budgets::address addr(uint8_t last) {
  source_budgets::address a{};
  a[10] = a[11] = 0xff;
  a[12] = 127;
  a[15] = last;
  return a;
}

}  // namespace

TEST_CASE("token bucket: starts full, refills at the rate, never beyond the burst") {
  common::token_bucket b;
  for (int i = 0; i < 3; ++i)
    CHECK(b.take(1000, 1.0, 3));
  CHECK_FALSE(b.take(1000, 1.0, 3));
  CHECK(b.retry_after_s(1.0) == 1);
  CHECK_FALSE(b.take(1500, 1.0, 3));  // half a token
  CHECK(b.take(2000, 1.0, 3));
  CHECK_FALSE(b.full(2000, 1.0, 3));
  CHECK(b.full(60000, 1.0, 3));  // capped at the burst, not 58 tokens
  for (int i = 0; i < 3; ++i)
    CHECK(b.take(60000, 1.0, 3));
  CHECK_FALSE(b.take(60000, 1.0, 3));
  CHECK(b.retry_after_s(0.1) == 10);
}

TEST_CASE("source budgets: a burst, one 4.29 a second, then silence; back after Max-Age") {
  source_budgets b({2.0, 4.0, 16});
  uint32_t wait = 0;
  for (int i = 0; i < 4; ++i)
    CHECK(b.admit(addr(1), 0, wait) == verdict::pass);
  CHECK(b.admit(addr(1), 0, wait) == verdict::refuse);
  CHECK(wait == 1);
  CHECK(b.admit(addr(1), 100, wait) == verdict::drop);
  CHECK(b.admit(addr(1), 200, wait) == verdict::drop);
  CHECK(b.refused_total() == 1);
  CHECK(b.dropped_total() == 2);
  // Another address has a budget of its own.
  CHECK(b.admit(addr(2), 200, wait) == verdict::pass);
  // Half a second later one token is back (2 per second).
  CHECK(b.admit(addr(1), 700, wait) == verdict::pass);
  CHECK(b.admit(addr(1), 700, wait) == verdict::drop);  // told within the last second
  CHECK(b.admit(addr(1), 1100, wait) == verdict::pass);   // 0.4 + 0.8 tokens
  CHECK(b.admit(addr(1), 1100, wait) == verdict::refuse);  // told again after a second
  CHECK(wait == 1);
}

TEST_CASE("source budgets: a rate of 0 is no budget") {
  source_budgets b({0.0, 1.0, 16});
  uint32_t wait = 0;
  for (int i = 0; i < 1000; ++i)
    REQUIRE(b.admit(addr(1), 0, wait) == verdict::pass);
  CHECK(b.tracked() == 0);
}

TEST_CASE("source budgets: the table is bounded; a sweep forgets whole buckets only") {
  source_budgets b({1.0, 2.0, 3});
  uint32_t wait = 0;
  for (uint8_t i = 1; i <= 3; ++i)
    CHECK(b.admit(addr(i), 0, wait) == verdict::pass);
  CHECK(b.tracked() == 3);
  // Beyond the table: one shared bucket for every new address.
  CHECK(b.admit(addr(10), 0, wait) == verdict::pass);
  CHECK(b.admit(addr(11), 0, wait) == verdict::pass);
  CHECK(b.admit(addr(12), 0, wait) == verdict::refuse);
  CHECK(b.tracked() == 3);
  // addr(1) spent its burst, the others one token each.
  CHECK(b.admit(addr(1), 0, wait) == verdict::pass);
  b.sweep(1000);  // one second on: addr(2), addr(3) are whole again, addr(1) is not
  CHECK(b.tracked() == 1);
  b.sweep(5000);
  CHECK(b.tracked() == 0);
}
