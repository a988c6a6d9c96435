// The store's keys on real files: the schema migration to v2, add / revoke /
// rotate / list / load at a given time, and the key version that tells
// another connection (a running server) that something changed.
#include "store/store.hpp"

#include "store_fixture.hpp"

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

using namespace coapfleet;
using namespace coapfleet::server;
using namespace coapfleet::server::testing;
using key_outcome = store::key_outcome;

namespace {

constexpr model::millis t0 = 1'758'103'200'000;
constexpr model::millis hour = 3'600'000;


model::key_entry key(const std::string& id, model::role r, const std::string& secret,
                     model::millis at = t0) {
  return model::key_entry{id, r, secret, at, 0};
}

uint64_t version_of(store& s) {
  uint64_t v = 0;
  REQUIRE(s.key_version(v));
  return v;
}

model::key_table table_at(store& s, model::millis now) {
  model::key_table t;
  INFO(s.last_error());
  REQUIRE(s.load_keys(now, t));
  return t;
}

std::vector<model::key_info> listed_at(store& s, model::millis now) {
  std::vector<model::key_info> out;
  REQUIRE(s.list_keys(now, out));
  return out;
}

}  // namespace

TEST_CASE("keys: a new database is at schema v3 with an empty key table at version 0" * doctest::test_suite("sqlite")) {
  temp_db db;
  auto s = open_ok(db.path());
  CHECK(store::schema_version == 9);
  CHECK(raw(db.path(), "PRAGMA user_version") == "9");
  CHECK(raw(db.path(), "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master"
                       " WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name)")
        == "artifact_chunks,artifacts,audit,health,job_history,job_holders,job_nodes,jobs,keys,"
           "members,meta,nodes");
  CHECK(version_of(*s) == 0);
  auto t = table_at(*s, t0);
  CHECK(t.version == 0);
  CHECK(t.keys.empty());
  CHECK(listed_at(*s, t0).empty());
}

TEST_CASE("keys: a v1 database is migrated to v3 and keeps its nodes" * doctest::test_suite("sqlite")) {
  temp_db db;
  {
    auto s = open_ok(db.path());
    model::put_node n;
    n.reg.node_id = "node-1";
    n.reg.ip_address = "127.1.0.1";
    REQUIRE(s->apply({n}));
  }
  // What a server of schema v1 left behind.
  undo_v5(db.path());
  raw(db.path(), "DROP TABLE keys");
  raw(db.path(), "DROP TABLE meta");
  raw(db.path(), "DROP TABLE audit");
  raw(db.path(), "ALTER TABLE nodes DROP COLUMN reported_ip");
  raw(db.path(), "PRAGMA user_version = 1");
  REQUIRE(raw(db.path(), "PRAGMA user_version") == "1");
  auto s = open_ok(db.path());
  CHECK(raw(db.path(), "PRAGMA user_version") == "9");
  REQUIRE(s->load_nodes().size() == 1);
  CHECK(version_of(*s) == 0);
  CHECK(s->add_key(key("node-1", model::role::node, "k1")) == key_outcome::done);
  CHECK(version_of(*s) == 1);
}

TEST_CASE("keys: add stores the text verbatim and bumps the version; a second key is refused") {
  temp_db db;
  auto s = open_ok(db.path());
  std::string secret(64, 'f');
  secret[0] = '0';
  CHECK(s->add_key(key("node-1", model::role::node, secret)) == key_outcome::done);
  CHECK(version_of(*s) == 1);
  CHECK(raw(db.path(), "SELECT secret FROM keys WHERE id = 'node-1'") == secret);
  CHECK(raw(db.path(), "SELECT role FROM keys WHERE id = 'node-1'") == "node");

  // The identity has a valid key: 4.09-style conflict, nothing changes.
  CHECK(s->add_key(key("node-1", model::role::operator_, "other", t0 + 5)) == key_outcome::exists);
  CHECK(version_of(*s) == 1);
  CHECK(raw(db.path(), "SELECT count(*) FROM keys") == "1");

  CHECK(s->add_key(key("alice", model::role::operator_, "a-key", t0 + 1)) == key_outcome::done);
  CHECK(s->add_key(key("dash", model::role::reader, "d-key", t0 + 2)) == key_outcome::done);
  CHECK(version_of(*s) == 3);

  auto t = table_at(*s, t0 + 10);
  CHECK(t.version == 3);
  REQUIRE(t.keys.size() == 3);  // sorted by id
  CHECK(t.keys[0].id == "alice");
  CHECK(t.keys[0].r == model::role::operator_);
  CHECK(t.keys[0].secret == "a-key");
  CHECK(t.keys[0].created_at == t0 + 1);
  CHECK(t.keys[0].expires_at == 0);
  CHECK(t.keys[1].id == "dash");
  CHECK(t.keys[1].r == model::role::reader);
  CHECK(t.keys[2].id == "node-1");
  CHECK(t.keys[2].secret == secret);

  auto l = listed_at(*s, t0 + 10);
  REQUIRE(l.size() == 3);
  CHECK(l[0].id == "alice");
  CHECK(l[2].id == "node-1");
  CHECK(l[2].r == model::role::node);
  CHECK(l[2].created_at == t0);
  CHECK(l[2].expires_at == 0);
}

TEST_CASE("keys: revoke removes every key of the identity; an unknown one changes nothing") {
  temp_db db;
  auto s = open_ok(db.path());
  REQUIRE(s->add_key(key("node-1", model::role::node, "k1")) == key_outcome::done);
  REQUIRE(s->add_key(key("node-2", model::role::node, "k2")) == key_outcome::done);
  model::key_entry fresh = key("node-1", model::role::reader, "k1-new", t0 + 10);
  REQUIRE(s->rotate_key(fresh, t0 + hour) == key_outcome::done);
  auto before = version_of(*s);
  uint32_t removed = 0;
  CHECK(s->revoke_keys("node-1", removed) == key_outcome::done);
  CHECK(removed == 2);  // the current key and the one in its grace period
  CHECK(version_of(*s) == before + 1);
  auto t = table_at(*s, t0 + 20);
  REQUIRE(t.keys.size() == 1);
  CHECK(t.keys[0].id == "node-2");

  CHECK(s->revoke_keys("node-1", removed) == key_outcome::unknown);
  CHECK(removed == 0);
  CHECK(s->revoke_keys("nobody", removed) == key_outcome::unknown);
  CHECK(version_of(*s) == before + 1);
  // Revoked, the identity may get a key again.
  CHECK(s->add_key(key("node-1", model::role::node, "k1-again", t0 + 30)) == key_outcome::done);
}

TEST_CASE("keys: rotate keeps the old key for the grace period, the new one newest first") {
  temp_db db;
  auto s = open_ok(db.path());
  REQUIRE(s->add_key(key("ops", model::role::operator_, "old")) == key_outcome::done);
  model::key_entry fresh{"ops", model::role::node /* filled from the old key */, "new",
                         t0 + 1000, 0};
  REQUIRE(s->rotate_key(fresh, t0 + 1000 + hour) == key_outcome::done);
  CHECK(fresh.r == model::role::operator_);
  CHECK(version_of(*s) == 2);

  // During the grace period both work, the newest first.
  auto during = table_at(*s, t0 + 1000 + hour - 1);
  REQUIRE(during.keys.size() == 2);
  CHECK(during.keys[0].secret == "new");
  CHECK(during.keys[0].expires_at == 0);
  CHECK(during.keys[0].r == model::role::operator_);
  CHECK(during.keys[1].secret == "old");
  CHECK(during.keys[1].expires_at == t0 + 1000 + hour);
  auto l = listed_at(*s, t0 + 1000 + hour - 1);
  REQUIRE(l.size() == 2);
  CHECK(l[1].expires_at == t0 + 1000 + hour);

  // From the expiry on only the new key (the version did not change: the
  // reader must look at the time too).
  auto after = table_at(*s, t0 + 1000 + hour);
  REQUIRE(after.keys.size() == 1);
  CHECK(after.keys[0].secret == "new");
  CHECK(after.version == 2);
  CHECK(listed_at(*s, t0 + 1000 + hour).size() == 1);
  // The expired key is still stored until the identity's next change.
  uint32_t removed = 0;
  REQUIRE(s->revoke_keys("ops", removed) == key_outcome::done);
  CHECK(removed == 2);
}

TEST_CASE("keys: a second rotation never extends an expiry; expired keys go; grace 0") {
  temp_db db;
  auto s = open_ok(db.path());
  REQUIRE(s->add_key(key("n", model::role::node, "k0")) == key_outcome::done);
  model::key_entry k1{"n", {}, "k1", t0 + 10, 0};
  REQUIRE(s->rotate_key(k1, t0 + 10 + hour) == key_outcome::done);
  // A longer grace for the second rotation leaves k0's expiry as it was.
  model::key_entry k2{"n", {}, "k2", t0 + 20, 0};
  REQUIRE(s->rotate_key(k2, t0 + 20 + 2 * hour) == key_outcome::done);
  auto t = table_at(*s, t0 + 30);
  REQUIRE(t.keys.size() == 3);
  CHECK(t.keys[0].secret == "k2");
  CHECK(t.keys[1].secret == "k1");
  CHECK(t.keys[1].expires_at == t0 + 20 + 2 * hour);
  CHECK(t.keys[2].secret == "k0");
  CHECK(t.keys[2].expires_at == t0 + 10 + hour);

  // Grace 0: the previous keys stop at once; the expired k0 is deleted.
  model::key_entry k3{"n", {}, "k3", t0 + 10 + hour, 0};
  REQUIRE(s->rotate_key(k3, t0 + 10 + hour) == key_outcome::done);
  t = table_at(*s, t0 + 10 + hour);
  REQUIRE(t.keys.size() == 1);
  CHECK(t.keys[0].secret == "k3");
  CHECK(raw(db.path(), "SELECT count(*) FROM keys WHERE secret = 'k0'") == "0");
}

TEST_CASE("keys: rotating an identity without a valid key is refused") {
  temp_db db;
  auto s = open_ok(db.path());
  model::key_entry fresh{"ghost", {}, "x", t0, 0};
  CHECK(s->rotate_key(fresh, t0 + hour) == key_outcome::unknown);
  CHECK(version_of(*s) == 0);
  // Expired keys do not count: an identity with only an expired key has
  // nothing to rotate.
  REQUIRE(s->add_key(key("n", model::role::node, "k0")) == key_outcome::done);
  model::key_entry k1{"n", {}, "k1", t0 + 1, 0};
  REQUIRE(s->rotate_key(k1, t0 + 1) == key_outcome::done);  // k0 expires at once
  // Deleting only k1 by hand leaves the expired k0.
  raw(db.path(), "DELETE FROM keys WHERE secret = 'k1'");
  model::key_entry k2{"n", {}, "k2", t0 + 2, 0};
  CHECK(s->rotate_key(k2, t0 + hour) == key_outcome::unknown);
  // ... and add is allowed again, purging the expired key.
  CHECK(s->add_key(key("n", model::role::reader, "k3", t0 + 3)) == key_outcome::done);
  CHECK(raw(db.path(), "SELECT count(*) FROM keys WHERE id = 'n'") == "1");
  uint32_t removed = 0;
  CHECK(s->revoke_keys("n", removed) == key_outcome::done);
  CHECK(removed == 1);
}

TEST_CASE("keys: another connection sees every change through the version") {
  temp_db db;
  auto server = open_ok(db.path());    // the running server's connection
  auto offline = open_ok(db.path());   // `coapfleet-server keys ...` in another process
  CHECK(version_of(*server) == 0);
  REQUIRE(offline->add_key(key("node-1", model::role::node, "k1")) == key_outcome::done);
  CHECK(version_of(*server) == 1);
  auto t = table_at(*server, t0);
  CHECK(t.version == 1);
  REQUIRE(t.keys.size() == 1);
  CHECK(t.keys[0].secret == "k1");
  uint32_t removed = 0;
  REQUIRE(offline->revoke_keys("node-1", removed) == key_outcome::done);
  CHECK(version_of(*server) == 2);
  CHECK(table_at(*server, t0).keys.empty());
}

TEST_CASE("keys: a change that cannot get the write lock fails and changes nothing" * doctest::test_suite("sqlite")) {
  temp_db db;
  auto s = open_ok(db.path());
  s->set_busy_timeout(50);
  REQUIRE(s->add_key(key("a", model::role::node, "ka")) == key_outcome::done);
  {
    write_lock lock(db.path());
    REQUIRE(lock.ok());
    CHECK(s->add_key(key("b", model::role::node, "kb")) == key_outcome::failed);
    CHECK_FALSE(s->last_error().empty());
    uint32_t removed = 0;
    CHECK(s->revoke_keys("a", removed) == key_outcome::failed);
    model::key_entry fresh{"a", {}, "ka2", t0 + 1, 0};
    CHECK(s->rotate_key(fresh, t0 + hour) == key_outcome::failed);
  }
  CHECK(version_of(*s) == 1);
  auto t = table_at(*s, t0 + 2);
  REQUIRE(t.keys.size() == 1);
  CHECK(t.keys[0].secret == "ka");
  // The lock is gone: the store works again.
  CHECK(s->add_key(key("b", model::role::node, "kb", t0 + 3)) == key_outcome::done);
}
