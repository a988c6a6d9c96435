// Unit tests of model/rules and model/types: enum names, node liveness, the
// per-node update state machine, job progress and status, fleet status.
#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

#include "model/rules.hpp"

using namespace coapfleet::model;

namespace {

using S = node_update_state;

const std::vector<S> all_states = {S::pending,   S::notified, S::downloading, S::downloaded,
                                   S::installing, S::succeeded, S::failed,    S::timed_out,
                                   S::cancelled, S::skipped};

node_job_state node(S state, int32_t progress = -1) {
  node_job_state n;
  n.node_id = "n";
  n.state = state;
  n.progress = progress;
  return n;
}

job_counts counts_of(const std::vector<S>& states) {
  std::vector<node_job_state> nodes;
  for (auto s : states)
    nodes.push_back(node(s));
  return count_states(nodes);
}

}  // namespace

TEST_CASE("enum names round trip") {
  for (auto s : all_states) {
    node_update_state back = S::skipped;
    REQUIRE(from_string(to_string(s), back));
    CHECK(back == s);
  }
  CHECK(std::string{to_string(S::timed_out)} == "timed_out");
  node_update_state u = S::pending;
  CHECK_FALSE(from_string("in_progress", u));
  CHECK_FALSE(from_string("", u));
  CHECK_FALSE(from_string("Pending", u));
  CHECK(u == S::pending);

  for (auto s : {job_status::created, job_status::in_progress, job_status::completed,
                 job_status::failed, job_status::partially_failed, job_status::cancelled}) {
    job_status back = job_status::created;
    REQUIRE(from_string(to_string(s), back));
    CHECK(back == s);
  }
  CHECK(std::string{to_string(job_status::partially_failed)} == "partially_failed");
  job_status j = job_status::created;
  CHECK_FALSE(from_string("done", j));

  CHECK(std::string{to_string(node_status::online)} == "online");
  CHECK(std::string{to_string(node_status::stale)} == "stale");
  CHECK(std::string{to_string(node_status::offline)} == "offline");
}

TEST_CASE("is_terminal") {
  std::set<S> terminal = {S::succeeded, S::failed, S::timed_out, S::cancelled, S::skipped};
  for (auto s : all_states)
    CHECK_MESSAGE(is_terminal(s) == (terminal.count(s) == 1), to_string(s));
}

TEST_CASE("liveness") {
  const millis stale = 30000, offline = 90000, seen = 1000000;
  CHECK(liveness(seen, seen, stale, offline) == node_status::online);
  CHECK(liveness(seen, seen + stale - 1, stale, offline) == node_status::online);
  CHECK(liveness(seen, seen + stale, stale, offline) == node_status::stale);
  CHECK(liveness(seen, seen + offline - 1, stale, offline) == node_status::stale);
  CHECK(liveness(seen, seen + offline, stale, offline) == node_status::offline);
  CHECK(liveness(seen, seen + 10 * offline, stale, offline) == node_status::offline);
  // A clock that went backwards keeps the node online.
  CHECK(liveness(seen, seen - 5000, stale, offline) == node_status::online);
}

TEST_CASE("check_transition: the whole table") {
  // Every allowed (from, to); everything else is forbidden.
  std::set<std::pair<S, S>> allowed;
  const std::vector<S> chain = {S::pending, S::notified, S::downloading, S::downloaded,
                                S::installing, S::succeeded};
  for (size_t i = 0; i + 1 < chain.size(); ++i) {
    for (size_t k = i + 1; k < chain.size(); ++k)
      allowed.insert({chain[i], chain[k]});  // forward, skipping allowed
    allowed.insert({chain[i], S::failed});
    allowed.insert({chain[i], S::cancelled});
    if (chain[i] != S::pending)
      allowed.insert({chain[i], chain[i]});  // repeat (progress updates)
  }
  for (auto s : {S::succeeded, S::failed, S::cancelled})
    allowed.insert({s, s});  // retransmitted final reports

  int n_allowed = 0;
  for (auto from : all_states) {
    for (auto to : all_states) {
      auto why = check_transition(from, to);
      bool expected = allowed.count({from, to}) == 1;
      INFO(to_string(from), " -> ", to_string(to), ": ", why);
      CHECK(why.empty() == expected);
      n_allowed += why.empty();
    }
  }
  CHECK(n_allowed == static_cast<int>(allowed.size()));
}

TEST_CASE("check_transition: some cases by name, and the reasons") {
  CHECK(check_transition(S::pending, S::notified).empty());
  CHECK(check_transition(S::notified, S::installing).empty());
  CHECK(check_transition(S::installing, S::installing).empty());
  CHECK(check_transition(S::downloading, S::failed).empty());
  CHECK(check_transition(S::pending, S::cancelled).empty());
  CHECK(check_transition(S::succeeded, S::succeeded).empty());

  auto back = check_transition(S::installing, S::downloading);
  CHECK(back.find("back") != std::string::npos);
  auto done = check_transition(S::succeeded, S::failed);
  CHECK(done.find("already succeeded") != std::string::npos);
  CHECK_FALSE(check_transition(S::failed, S::installing).empty());
  CHECK_FALSE(check_transition(S::cancelled, S::notified).empty());
  CHECK_FALSE(check_transition(S::timed_out, S::succeeded).empty());
  CHECK_FALSE(check_transition(S::skipped, S::notified).empty());
  for (auto server_only : {S::pending, S::timed_out, S::skipped}) {
    auto why = check_transition(S::installing, server_only);
    CHECK(why.find("server") != std::string::npos);
    CHECK_FALSE(check_transition(server_only, server_only).empty());
  }
}

TEST_CASE("count_states and finished") {
  auto c = counts_of({S::pending, S::pending, S::installing, S::succeeded, S::failed,
                      S::timed_out, S::cancelled, S::skipped});
  CHECK(c.total == 8);
  CHECK(c.of(S::pending) == 2);
  CHECK(c.of(S::installing) == 1);
  CHECK(c.of(S::notified) == 0);
  CHECK(c.of(S::succeeded) == 1);
  CHECK(c.finished() == 5);
  CHECK(count_states({}).total == 0);
  CHECK(count_states({}).finished() == 0);
}

TEST_CASE("job_progress") {
  CHECK(job_progress({}) == 0);
  CHECK(job_progress({node(S::pending)}) == 0);
  CHECK(job_progress({node(S::notified)}) == 5);
  CHECK(job_progress({node(S::downloading)}) == 25);
  CHECK(job_progress({node(S::downloaded)}) == 50);
  CHECK(job_progress({node(S::installing)}) == 75);
  CHECK(job_progress({node(S::downloading, 40)}) == 40);
  CHECK(job_progress({node(S::installing, 0)}) == 0);
  for (auto t : {S::succeeded, S::failed, S::timed_out, S::cancelled, S::skipped})
    CHECK(job_progress({node(t)}) == 100);
  CHECK(job_progress({node(S::succeeded, 10)}) == 100);  // finished counts 100
  CHECK(job_progress({node(S::succeeded), node(S::pending)}) == 50);
  CHECK(job_progress({node(S::succeeded), node(S::downloading, 30), node(S::notified)})
        == (100 + 30 + 5) / 3);

  // Rounded down: never 100 while a node is still at work.
  std::vector<node_job_state> many(199, node(S::succeeded));
  many.push_back(node(S::installing));
  CHECK(job_progress(many) == 99);
}

TEST_CASE("derive_job_status") {
  using J = job_status;
  auto done = counts_of({S::succeeded, S::succeeded});
  CHECK(derive_job_status(J::created, done) == J::created);
  CHECK(derive_job_status(J::cancelled, done) == J::cancelled);
  CHECK(derive_job_status(J::in_progress, done) == J::completed);
  CHECK(derive_job_status(J::in_progress, counts_of({})) == J::in_progress);
  CHECK(derive_job_status(J::in_progress, counts_of({S::succeeded, S::installing}))
        == J::in_progress);
  CHECK(derive_job_status(J::in_progress, counts_of({S::pending})) == J::in_progress);
  CHECK(derive_job_status(J::in_progress, counts_of({S::failed, S::timed_out})) == J::failed);
  CHECK(derive_job_status(J::in_progress, counts_of({S::skipped})) == J::failed);
  CHECK(derive_job_status(J::in_progress, counts_of({S::succeeded, S::failed}))
        == J::partially_failed);
  CHECK(derive_job_status(J::in_progress, counts_of({S::succeeded, S::skipped}))
        == J::partially_failed);
  CHECK(derive_job_status(J::in_progress, counts_of({S::succeeded, S::cancelled}))
        == J::partially_failed);
  // A finished status follows the counts too.
  CHECK(derive_job_status(J::completed, counts_of({S::succeeded, S::failed}))
        == J::partially_failed);
  CHECK(derive_job_status(J::failed, counts_of({S::succeeded})) == J::completed);
}

TEST_CASE("fleet_status") {
  CHECK(std::string{fleet_status(0, 0)} == "unknown");
  CHECK(std::string{fleet_status(3, 3)} == "healthy");
  CHECK(std::string{fleet_status(1, 1)} == "healthy");
  CHECK(std::string{fleet_status(3, 0)} == "unhealthy");
  CHECK(std::string{fleet_status(3, 1)} == "degraded");
  CHECK(std::string{fleet_status(3, 2)} == "degraded");
}
