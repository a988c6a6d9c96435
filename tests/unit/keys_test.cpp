// The keys actor with the real persistence actor on a real SQLite file and a
// mock transport that records the key tables it is handed: the table at
// start, after each change the actor makes (before it answers), after a
// change made through another connection (as `coapfleet-server keys` does
// from another process) within one check interval, and when a rotated key's
// grace period ends. The fixture's clock is the keys' clock.
#include "actor_fixture.hpp"

#include <set>

#include "actors/server/keys.hpp"
#include "common/random.hpp"

using namespace coapfleet;
using namespace coapfleet::actor_test;

namespace {

constexpr auto check_interval = std::chrono::seconds(1);

struct keys_fixture : fixture {
  keys_actor keys;
  int secrets = 0;

  /// The keys actor, spawned on what the store holds now.
  void start_keys(bool random_secrets = false) {
    server::keys_config cfg;
    cfg.check_interval = check_interval;
    cfg.now = clock_fn();
    if (!random_secrets)
      cfg.new_secret = [this] { return "secret-" + std::to_string(++secrets); };
    keys = own(server::spawn_keys(*sys, cfg, persistence, transport));
    sched->run();
  }

  /// What `coapfleet-server keys` does: another connection to the database.
  std::unique_ptr<server::store> offline() {
    std::string err;
    auto db = server::store::open((dir / "fleet.db").string(), err);
    REQUIRE_MESSAGE(db, err);
    return db;
  }

  const model::key_table& last_table() const {
    REQUIRE_FALSE(wire->keys.empty());
    return wire->keys.back();
  }

  std::vector<std::string> secrets_in(const model::key_table& t) const {
    std::vector<std::string> out;
    for (auto& k : t.keys)
      out.push_back(k.secret);
    return out;
  }

  model::key_entry create(const std::string& id, model::role r) {
    return ask<model::key_entry>(keys, atom::create::value, id, r);
  }
};

}  // namespace

TEST_CASE("random_hex: lower-case hex of the asked length, never twice the same") {
  std::set<std::string> seen;
  for (int i = 0; i < 64; ++i) {
    auto h = common::random_hex(32);
    REQUIRE(h.size() == 64);
    CHECK(h.find_first_not_of("0123456789abcdef") == std::string::npos);
    seen.insert(h);
  }
  CHECK(seen.size() == 64);
  CHECK(common::random_hex(0).empty());
  CHECK(common::random_hex(1).size() == 2);
  auto k = server::new_key_secret();
  CHECK(k.size() == 2 * model::key_bytes);
}

TEST_CASE_FIXTURE(keys_fixture, "keys: at start the stored valid keys go to the transport") {
  auto db = offline();
  REQUIRE(db->add_key({"node-1", model::role::node, "k1", now(), 0})
          == server::store::key_outcome::done);
  REQUIRE(db->add_key({"alice", model::role::operator_, "k2", now(), 0})
          == server::store::key_outcome::done);
  start_keys();
  REQUIRE(wire->keys.size() == 1);
  auto& t = last_table();
  CHECK(t.version == 2);
  REQUIRE(t.keys.size() == 2);
  CHECK(t.keys[0].id == "alice");
  CHECK(t.keys[0].r == model::role::operator_);
  CHECK(t.keys[1].id == "node-1");
  CHECK(t.keys[1].secret == "k1");
  // Nothing changes: the checks send nothing more.
  for (int i = 0; i < 3; ++i)
    advance(check_interval);
  CHECK(wire->keys.size() == 1);
}

TEST_CASE_FIXTURE(keys_fixture, "keys: add answers the new key after the transport has it") {
  start_keys(true);
  REQUIRE(wire->keys.size() == 1);
  CHECK(last_table().keys.empty());
  auto k = create("node-1", model::role::node);
  CHECK(k.id == "node-1");
  CHECK(k.r == model::role::node);
  CHECK(k.created_at == now());
  CHECK(k.expires_at == 0);
  REQUIRE(k.secret.size() == 64);
  CHECK(k.secret.find_first_not_of("0123456789abcdef") == std::string::npos);
  REQUIRE(wire->keys.size() == 2);
  REQUIRE(last_table().keys.size() == 1);
  CHECK(last_table().keys[0].secret == k.secret);
  CHECK(last_table().version == 1);
  // The store has exactly that text.
  model::key_table stored;
  REQUIRE(offline()->load_keys(now(), stored));
  CHECK(secrets_in(stored) == std::vector<std::string>{k.secret});
}

TEST_CASE_FIXTURE(keys_fixture, "keys: add refuses a second key, bad ids and roles") {
  start_keys();
  create("node-1", model::role::node);
  auto tables = wire->keys.size();
  auto err = ask_error<model::key_entry>(keys, atom::create::value, std::string("node-1"),
                                         model::role::operator_);
  CHECK(is_api_error(err, api_errc::conflict));
  CHECK(error_context(err).at(1) == "id");
  err = ask_error<model::key_entry>(keys, atom::create::value, std::string("a b"),
                                    model::role::node);
  CHECK(is_api_error(err, api_errc::bad_request));
  CHECK(error_context(err).at(1) == "id");
  for (auto r : {model::role::trusted, model::role::anonymous}) {
    err = ask_error<model::key_entry>(keys, atom::create::value, std::string("n2"), r);
    CHECK(is_api_error(err, api_errc::bad_request));
    CHECK(error_context(err).at(1) == "role");
  }
  CHECK(wire->keys.size() == tables);  // nothing changed, nothing sent
}

TEST_CASE_FIXTURE(keys_fixture, "keys: list has every valid key, sorted, without secrets") {
  start_keys();
  create("zeta", model::role::reader);
  create("alpha", model::role::operator_);
  auto l = ask<std::vector<model::key_info>>(keys, atom::list::value);
  REQUIRE(l.size() == 2);
  CHECK(l[0].id == "alpha");
  CHECK(l[0].r == model::role::operator_);
  CHECK(l[1].id == "zeta");
  CHECK(l[1].r == model::role::reader);
  CHECK(l[1].created_at == now());
}

TEST_CASE_FIXTURE(keys_fixture, "keys: revoke takes every key of the identity out at once") {
  start_keys();
  create("node-1", model::role::node);
  create("node-2", model::role::node);
  ask<model::key_entry>(keys, atom::rotate::value, std::string("node-1"), int64_t{3600});
  REQUIRE(last_table().keys.size() == 3);
  auto n = ask<uint32_t>(keys, atom::revoke::value, std::string("node-1"));
  CHECK(n == 2);
  REQUIRE(last_table().keys.size() == 1);
  CHECK(last_table().keys[0].id == "node-2");
  auto err = ask_error<uint32_t>(keys, atom::revoke::value, std::string("node-1"));
  CHECK(is_api_error(err, api_errc::not_found));
  CHECK(error_context(err).at(1) == "id");
  err = ask_error<uint32_t>(keys, atom::revoke::value, std::string(""));
  CHECK(is_api_error(err, api_errc::bad_request));
}

TEST_CASE_FIXTURE(keys_fixture, "keys: a rotated key works for the grace period, then goes") {
  start_keys();
  auto old = create("ops", model::role::operator_);
  auto fresh = ask<model::key_entry>(keys, atom::rotate::value, std::string("ops"), int64_t{10});
  CHECK(fresh.r == model::role::operator_);
  CHECK(fresh.secret != old.secret);
  auto during = last_table();
  CHECK(secrets_in(during) == std::vector<std::string>{fresh.secret, old.secret});
  CHECK(during.keys[1].expires_at == now() + 10'000);
  auto tables = wire->keys.size();
  // Nine seconds on, both still work: nothing new is sent.
  for (int i = 0; i < 9; ++i)
    advance(check_interval);
  CHECK(wire->keys.size() == tables);
  // At the end of the grace period the old key leaves the table, although
  // the key version did not change.
  advance(check_interval);
  REQUIRE(wire->keys.size() == tables + 1);
  CHECK(secrets_in(last_table()) == std::vector<std::string>{fresh.secret});
  CHECK(last_table().version == during.version);
  advance(check_interval);
  CHECK(wire->keys.size() == tables + 1);
}

TEST_CASE_FIXTURE(keys_fixture, "keys: rotate refuses unknown identities and bad grace periods") {
  start_keys();
  auto err = ask_error<model::key_entry>(keys, atom::rotate::value, std::string("ghost"),
                                         int64_t{60});
  CHECK(is_api_error(err, api_errc::not_found));
  create("n1", model::role::node);
  for (int64_t bad : {int64_t{-1}, model::max_grace_seconds + 1}) {
    err = ask_error<model::key_entry>(keys, atom::rotate::value, std::string("n1"), bad);
    CHECK(is_api_error(err, api_errc::bad_request));
    CHECK(error_context(err).at(1) == "grace_seconds");
  }
  // Grace 0: the previous key stops at once.
  auto fresh = ask<model::key_entry>(keys, atom::rotate::value, std::string("n1"), int64_t{0});
  CHECK(secrets_in(last_table()) == std::vector<std::string>{fresh.secret});
}

TEST_CASE_FIXTURE(keys_fixture, "keys: a change by another process reaches the transport within a check") {
  start_keys();
  auto tables = wire->keys.size();
  auto db = offline();
  REQUIRE(db->add_key({"node-9", model::role::node, "offline-key", now(), 0})
          == server::store::key_outcome::done);
  CHECK(wire->keys.size() == tables);
  advance(check_interval);
  REQUIRE(wire->keys.size() == tables + 1);
  CHECK(secrets_in(last_table()) == std::vector<std::string>{"offline-key"});
  CHECK(last_table().version == 1);
  uint32_t removed = 0;
  REQUIRE(db->revoke_keys("node-9", removed) == server::store::key_outcome::done);
  advance(check_interval);
  REQUIRE(wire->keys.size() == tables + 2);
  CHECK(last_table().keys.empty());
  CHECK(last_table().version == 2);
}

TEST_CASE_FIXTURE(keys_fixture, "keys: a locked database fails the change and keeps the table") {
  start_keys();
  create("n1", model::role::node);
  auto tables = wire->keys.size();
  {
    db_lock lock(dir / "fleet.db");
    auto err = ask_error<model::key_entry>(keys, atom::create::value, std::string("n2"),
                                           model::role::node);
    CHECK(is_api_error(err, api_errc::internal));
  }
  CHECK(wire->keys.size() == tables);
  auto l = ask<std::vector<model::key_info>>(keys, atom::list::value);
  CHECK(l.size() == 1);
  // The database is back: the change goes through.
  create("n2", model::role::node);
  CHECK(last_table().keys.size() == 2);
}

TEST_CASE_FIXTURE(keys_fixture, "keys: no random bytes, no key") {
  server::keys_config cfg;
  cfg.now = clock_fn();
  cfg.new_secret = [] { return std::string{}; };
  keys = own(server::spawn_keys(*sys, cfg, persistence, transport));
  sched->run();
  auto err = ask_error<model::key_entry>(keys, atom::create::value, std::string("n1"),
                                         model::role::node);
  CHECK(is_api_error(err, api_errc::internal));
  CHECK(ask<std::vector<model::key_info>>(keys, atom::list::value).empty());
}
