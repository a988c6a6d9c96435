// The store's audit log on real files: records stored with a growing seq
// through apply() (one transaction with the other writes), pages newest first
// below a cursor, the keep limit applied in the same transaction, the
// migration of v2 and v1 databases to v3, and the file's mode 0600.
#include "store/store.hpp"

#include "store_fixture.hpp"

#include <doctest/doctest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

using namespace coapfleet;
using namespace coapfleet::server;
using namespace coapfleet::server::testing;

namespace {

constexpr model::millis t0 = 1'758'103'200'000;


model::put_audit record(const std::string& action, const std::string& target = "job-1",
                        const std::string& outcome = "2.01", model::millis at = t0) {
  model::audit_record r;
  r.at = at;
  r.identity = "alice";
  r.r = model::role::operator_;
  r.secure = true;
  r.address = "127.0.0.1";
  r.port = 40000;
  r.action = action;
  r.target = target;
  r.outcome = outcome;
  return {r};
}

model::audit_page page_of(store& s, uint32_t limit, uint64_t before = 0) {
  model::audit_page p;
  INFO(s.last_error());
  REQUIRE(s.audit_page(model::audit_query{before, limit}, p));
  return p;
}

uint64_t count_of(store& s) {
  uint64_t n = 0;
  REQUIRE(s.audit_count(n));
  return n;
}

}  // namespace

TEST_CASE("audit: records are stored with every field and a growing seq") {
  temp_db db;
  auto s = open_ok(db.path());
  CHECK(page_of(*s, 10).records.empty());
  auto refused = record("system.shutdown", "", "4.01");
  refused.rec.identity.clear();
  refused.rec.r = model::role::reader;
  refused.rec.secure = false;
  refused.rec.address = "127.0.0.2";
  refused.rec.detail = "authentication required";
  REQUIRE(s->apply({record("job.create"), refused}));
  auto stored = s->take_audited();
  REQUIRE(stored.size() == 2);
  CHECK(stored[0].seq == 1);
  CHECK(stored[1].seq == 2);
  CHECK(s->take_audited().empty());
  auto p = page_of(*s, 10);
  REQUIRE(p.records.size() == 2);
  CHECK(p.next == 0);
  auto& newest = p.records[0];
  CHECK(newest.seq == 2);
  CHECK(newest.action == "system.shutdown");
  CHECK(newest.identity.empty());
  CHECK(newest.r == model::role::reader);
  CHECK_FALSE(newest.secure);
  CHECK(newest.address == "127.0.0.2");
  CHECK(newest.target.empty());
  CHECK(newest.outcome == "4.01");
  CHECK(newest.detail == "authentication required");
  auto& oldest = p.records[1];
  CHECK(oldest.seq == 1);
  CHECK(oldest.at == t0);
  CHECK(oldest.identity == "alice");
  CHECK(oldest.r == model::role::operator_);
  CHECK(oldest.secure);
  CHECK(oldest.port == 40000);
  CHECK(oldest.action == "job.create");
  CHECK(oldest.target == "job-1");
  CHECK(oldest.outcome == "2.01");
  CHECK(oldest.detail.empty());
}

TEST_CASE("audit: a trusted plain source keeps its role") {
  temp_db db;
  auto s = open_ok(db.path());
  auto r = record("job.cancel");
  r.rec.r = model::role::trusted;
  REQUIRE(s->apply({r}));
  CHECK(page_of(*s, 1).records.at(0).r == model::role::trusted);
}

TEST_CASE("audit: pages go newest first below the cursor, next until the oldest") {
  temp_db db;
  auto s = open_ok(db.path());
  std::vector<model::write_op> ops;
  for (int i = 1; i <= 7; ++i)
    ops.push_back(record("job.create", "job-" + std::to_string(i)));
  REQUIRE(s->apply(ops));
  auto p1 = page_of(*s, 3);
  REQUIRE(p1.records.size() == 3);
  CHECK(p1.records[0].target == "job-7");
  CHECK(p1.records[2].target == "job-5");
  CHECK(p1.next == 5);
  auto p2 = page_of(*s, 3, p1.next);
  REQUIRE(p2.records.size() == 3);
  CHECK(p2.records[0].seq == 4);
  CHECK(p2.next == 2);
  auto p3 = page_of(*s, 3, p2.next);
  REQUIRE(p3.records.size() == 1);
  CHECK(p3.records[0].target == "job-1");
  CHECK(p3.next == 0);
  // Exactly a page left: no next.
  auto p4 = page_of(*s, 4, 5);
  CHECK(p4.records.size() == 4);
  CHECK(p4.next == 0);
  CHECK(page_of(*s, 3, 1).records.empty());
}

TEST_CASE("audit: the keep limit drops the oldest rows in the same transaction") {
  temp_db db;
  auto s = open_ok(db.path());
  s->set_audit_keep(5);
  for (int i = 1; i <= 12; ++i)
    REQUIRE(s->apply({record("job.create", "job-" + std::to_string(i))}));
  CHECK(count_of(*s) == 5);
  auto p = page_of(*s, 100);
  REQUIRE(p.records.size() == 5);
  CHECK(p.records.front().seq == 12);
  CHECK(p.records.back().seq == 8);
  CHECK(p.next == 0);
  // A batch larger than the limit keeps its newest records.
  std::vector<model::write_op> ops;
  for (int i = 13; i <= 20; ++i)
    ops.push_back(record("job.create", "job-" + std::to_string(i)));
  REQUIRE(s->apply(ops));
  CHECK(count_of(*s) == 5);
  CHECK(page_of(*s, 1).records.at(0).seq == 20);
  // seq never goes back, also after a reopen.
  s.reset();
  s = open_ok(db.path());
  REQUIRE(s->apply({record("key.add", "node-1")}));
  CHECK(s->take_audited().at(0).seq == 21);
}

TEST_CASE("audit: a failed transaction stores no record and reports none" * doctest::test_suite("sqlite")) {
  temp_db db;
  auto s = open_ok(db.path());
  s->set_busy_timeout(50);
  write_lock lock(db.path());
  REQUIRE(lock.ok());
  CHECK_FALSE(s->apply({record("job.create")}));
  CHECK(s->take_audited().empty());
}

TEST_CASE("audit: a v2 database is migrated to v3 and keeps its keys and nodes" * doctest::test_suite("sqlite")) {
  temp_db db;
  {
    auto s = open_ok(db.path());
    model::put_node n;
    n.reg.node_id = "node-1";
    n.reg.ip_address = "127.1.0.1";
    REQUIRE(s->apply({n}));
    REQUIRE(s->add_key({"alice", model::role::operator_, "k1", t0, 0})
            == store::key_outcome::done);
  }
  // What a server of schema v2 left behind.
  undo_v5(db.path());
  raw(db.path(), "DROP TABLE audit");
  raw(db.path(), "ALTER TABLE nodes DROP COLUMN reported_ip");
  raw(db.path(), "PRAGMA user_version = 2");
  ::chmod(db.path().c_str(), 0644);
  auto s = open_ok(db.path());
  CHECK(raw(db.path(), "PRAGMA user_version") == "9");
  CHECK(s->load_nodes().size() == 1);
  model::key_table t;
  REQUIRE(s->load_keys(t0, t));
  CHECK(t.keys.size() == 1);
  REQUIRE(s->apply({record("key.add", "alice")}));
  CHECK(page_of(*s, 10).records.size() == 1);
  struct stat st {};
  REQUIRE(::stat(db.path().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("audit: a v1 database is migrated through v2 to v3" * doctest::test_suite("sqlite")) {
  temp_db db;
  { auto s = open_ok(db.path()); }
  undo_v5(db.path());
  raw(db.path(), "DROP TABLE audit");
  raw(db.path(), "DROP TABLE keys");
  raw(db.path(), "DROP TABLE meta");
  raw(db.path(), "ALTER TABLE nodes DROP COLUMN reported_ip");
  raw(db.path(), "PRAGMA user_version = 1");
  auto s = open_ok(db.path());
  CHECK(raw(db.path(), "PRAGMA user_version") == "9");
  REQUIRE(s->apply({record("job.create")}));
  CHECK(count_of(*s) == 1);
}
