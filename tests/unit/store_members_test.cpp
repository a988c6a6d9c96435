// The cluster's members table (leases by the store's clock) and the fence
// it puts on every write, on SQLite and PostgreSQL.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include <algorithm>

#include "model/ownership.hpp"
#include "store/members.hpp"
#include "store/store.hpp"
#include "store_fixture.hpp"

using namespace coapfleet;
using namespace coapfleet::server;
using namespace coapfleet::server::testing;

namespace {

std::unique_ptr<member_table> members_ok(const std::string& path) {
  std::string err;
  auto t = member_table::open(path, err);
  INFO(err);
  REQUIRE(t != nullptr);
  return t;
}

member_row row(const std::string& id, int64_t lease_ms) {
  member_row m;
  m.member_id = id;
  m.cluster_endpoint = "127.0.1.1:5700";
  m.coap_endpoint = "127.0.1.1:5683";
  m.lease_ms = lease_ms;
  return m;
}

put_node node(const std::string& id) {
  model::node_registration r;
  r.node_id = id;
  r.ip_address = "127.1.0.1";
  r.port = 5683;
  return put_node{r, 1, 1, {}};
}

const member_row* find(const std::vector<member_row>& all, const std::string& id) {
  for (auto& m : all)
    if (m.member_id == id)
      return &m;
  return nullptr;
}

}  // namespace

TEST_CASE("members: every join has a new epoch; a live lease renews") {
  temp_db db;
  auto s = open_ok(db.path());
  auto t = members_ok(db.path());
  auto a = row("a", 60000), b = row("b", 60000);
  REQUIRE(t->join(a));
  REQUIRE(t->join(b));
  CHECK(a.epoch >= 1);
  CHECK(b.epoch > a.epoch);
  CHECK(a.started_at > 0);
  CHECK(t->renew("a", a.epoch) == member_table::renewal::renewed);
  // An epoch that is not the row's is fenced.
  CHECK(t->renew("a", a.epoch + 100) == member_table::renewal::fenced);
  CHECK(t->renew("nobody", 1) == member_table::renewal::fenced);
  std::vector<member_row> all;
  REQUIRE(t->list(all));
  REQUIRE(all.size() == 2);
  CHECK(all[0].member_id == "a");
  CHECK(all[0].live);
  CHECK(all[0].cluster_endpoint == "127.0.1.1:5700");
  CHECK(all[0].coap_endpoint == "127.0.1.1:5683");
  CHECK(all[0].heartbeat_age_ms < 60000);
  CHECK(all[1].epoch == b.epoch);
  // Joining again replaces the epoch.
  auto again = row("a", 60000);
  REQUIRE(t->join(again));
  CHECK(again.epoch > b.epoch);
  CHECK(t->renew("a", a.epoch) == member_table::renewal::fenced);
  CHECK(t->renew("a", again.epoch) == member_table::renewal::renewed);
}

TEST_CASE("members: a lapsed lease is not live and cannot be renewed; leave ends it at once") {
  temp_db db;
  auto s = open_ok(db.path());
  auto t = members_ok(db.path());
  auto a = row("a", 150), b = row("b", 60000);
  REQUIRE(t->join(a));
  REQUIRE(t->join(b));
  // Well past the lease (by the store's clock, which the sleep also moves).
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  std::vector<member_row> all;
  REQUIRE(t->list(all));
  REQUIRE(find(all, "a") != nullptr);
  CHECK_FALSE(find(all, "a")->live);
  CHECK(find(all, "a")->heartbeat_age_ms >= 150);
  CHECK(find(all, "b")->live);
  CHECK(t->renew("a", a.epoch) == member_table::renewal::fenced);
  REQUIRE(t->leave("b", b.epoch));
  REQUIRE(t->list(all));
  CHECK_FALSE(find(all, "b")->live);
  CHECK(t->renew("b", b.epoch) == member_table::renewal::fenced);
}

TEST_CASE("members: a fenced store writes nothing until its member joins again") {
  temp_db db;
  auto s = open_ok(db.path());
  auto t = members_ok(db.path());
  auto a = row("a", 60000);
  REQUIRE(t->join(a));
  REQUIRE(s->set_fence("a", a.epoch));
  REQUIRE(s->apply({node("n1")}));
  CHECK_FALSE(s->fenced());
  // Another process joined as "a" (a restarted member): the old epoch is stale.
  auto b = row("a", 60000);
  REQUIRE(t->join(b));
  CHECK_FALSE(s->apply({node("n2"), node("n3")}));
  CHECK(s->fenced());
  CHECK(s->last_error().find("fenced") != std::string::npos);
  CHECK(s->load_nodes().size() == 1);
  // With the new epoch it writes again; without a fence, always.
  REQUIRE(s->set_fence("a", b.epoch));
  REQUIRE(s->apply({node("n2")}));
  REQUIRE(t->leave("a", b.epoch));
  CHECK_FALSE(s->apply({node("n3")}));
  CHECK(s->fenced());
  REQUIRE(s->set_fence("", 0));
  REQUIRE(s->apply({node("n3")}));
  CHECK(s->load_nodes().size() == 3);
}

namespace {

put_job a_job(const std::string& id) {
  model::job_record j;
  j.job_id = id;
  j.spec.name = "fw";
  j.spec.version = "2.0";
  j.spec.package_type = "script";
  j.spec.script = "true";
  j.spec.target_nodes = {"all"};
  j.created_at = j.updated_at = 1000;
  return put_job{j};
}

std::vector<std::string> owned_by(const std::vector<std::string>& jobs, const std::string& m,
                                  const std::vector<std::string>& live) {
  std::vector<std::string> out;
  for (auto& j : jobs)
    if (model::owner_of(j, live) == m)
      out.push_back(j);
  return out;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

TEST_CASE("job holders: each member claims its share; a joiner waits until the holder lets go") {
  temp_db db;
  auto s = open_ok(db.path());
  std::vector<std::string> jobs;
  std::vector<write_op> ops;
  for (int i = 0; i < 30; ++i) {
    jobs.push_back("job-" + std::to_string(i));
    ops.push_back(a_job(jobs.back()));
  }
  // One job is created by "a" and held by it from the start.
  ops.push_back(model::put_job_holder{"job-0", "a"});
  REQUIRE(s->apply(ops));
  std::vector<std::string> ab{"a", "b"}, abc{"a", "b", "c"}, ac{"a", "c"};
  std::vector<std::string> claimed;
  uint32_t waiting = 99;
  // "a" and "b" are live: each takes exactly its share ("a" its job-0 too).
  std::vector<std::string> known;
  REQUIRE(s->claim_jobs("a", ab, {}, claimed, waiting, &known));
  CHECK(known == sorted(jobs));
  CHECK(sorted(claimed) == sorted(owned_by(jobs, "a", ab)));
  CHECK(waiting == 0);
  auto a_has = claimed;
  REQUIRE(s->claim_jobs("b", ab, {}, claimed, waiting));
  CHECK(sorted(claimed) == sorted(owned_by(jobs, "b", ab)));
  auto b_has = claimed;
  // Asked again with what it runs: nothing new.
  REQUIRE(s->claim_jobs("a", ab, a_has, claimed, waiting));
  CHECK(claimed.empty());
  CHECK(waiting == 0);
  // "c" joins: its share is still held by live members; it waits.
  auto c_share = owned_by(jobs, "c", abc);
  REQUIRE_FALSE(c_share.empty());
  REQUIRE(s->claim_jobs("c", abc, {}, claimed, waiting));
  CHECK(claimed.empty());
  CHECK(waiting == c_share.size());
  // "a" and "b" stop those jobs, then claim: the store lets go of them.
  auto keep = [&](const std::vector<std::string>& had, const std::string& m) {
    std::vector<std::string> out;
    for (auto& j : had)
      if (model::owner_of(j, abc) == m)
        out.push_back(j);
    return out;
  };
  REQUIRE(s->claim_jobs("a", abc, keep(a_has, "a"), claimed, waiting));
  CHECK(claimed.empty());
  REQUIRE(s->claim_jobs("b", abc, keep(b_has, "b"), claimed, waiting));
  CHECK(claimed.empty());
  REQUIRE(s->claim_jobs("c", abc, {}, claimed, waiting));
  CHECK(sorted(claimed) == sorted(c_share));
  CHECK(waiting == 0);
  // "b" dies (not live any more): "a" and "c" take its jobs over at once.
  std::vector<std::string> taken;
  REQUIRE(s->claim_jobs("a", ac, keep(a_has, "a"), claimed, waiting));
  taken.insert(taken.end(), claimed.begin(), claimed.end());
  REQUIRE(s->claim_jobs("c", ac, c_share, claimed, waiting));
  taken.insert(taken.end(), claimed.begin(), claimed.end());
  CHECK(sorted(taken) == sorted(keep(b_has, "b")));
  CHECK(waiting == 0);
  // Every job has exactly one holder, a live one.
  CHECK(raw(db.path(), "SELECT COUNT(*) FROM job_holders WHERE member_id IN ('a', 'c')")
        == std::to_string(jobs.size()));
  // A deleted job's holder goes with it.
  REQUIRE(s->apply({model::drop_job{"job-0"}}));
  CHECK(raw(db.path(), "SELECT COUNT(*) FROM job_holders") == std::to_string(jobs.size() - 1));
}

TEST_CASE("job holders: a fenced member claims nothing") {
  temp_db db;
  auto s = open_ok(db.path());
  auto t = members_ok(db.path());
  REQUIRE(s->apply({a_job("j1"), a_job("j2")}));
  auto a = row("a", 60000);
  REQUIRE(t->join(a));
  REQUIRE(s->set_fence("a", a.epoch));
  auto again = row("a", 60000);
  REQUIRE(t->join(again));  // "a" restarted elsewhere: the old epoch is stale
  std::vector<std::string> claimed;
  uint32_t waiting = 0;
  CHECK_FALSE(s->claim_jobs("a", {"a"}, {}, claimed, waiting));
  CHECK(s->fenced());
  CHECK(raw(db.path(), "SELECT COUNT(*) FROM job_holders") == "0");
}
