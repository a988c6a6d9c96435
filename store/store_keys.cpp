// The store's keys: the identities' pre-shared keys and the key version.
// Each change is a transaction of its own that bumps the version; reads of
// the valid keys take the version in the same (read) transaction, so a
// table and its version always belong together.
#include "store/store.hpp"
#include "store/store_internal.hpp"

namespace coapfleet::server {

namespace {

/// Steps a one-row query and returns its first column as an integer
/// (resetting it); false on an error or no row.
bool one_integer(stmt s, int64_t& out) {
  bool ok = s->step() == db::step_result::row;
  if (ok)
    out = s->integer(0);
  s->reset();
  return ok;
}

bool read_role(const std::string& text, model::role& out) {
  return model::from_string(text, out);
}

}  // namespace

bool store::statements::prepare_keys() {
  // A read of the keys and their version from one snapshot (PostgreSQL's
  // BEGIN alone reads each statement's own).
  return prepare(begin_read, pg() ? "BEGIN ISOLATION LEVEL REPEATABLE READ" : "BEGIN")
         && prepare(key_valid_count, sql::key_valid_count)
         && prepare(key_purge_expired, sql::key_purge_expired)
         && prepare(key_insert, sql::key_insert) && prepare(key_delete, sql::key_delete)
         && prepare(key_current_role, sql::key_current_role)
         && prepare(key_expire, sql::key_expire)
         && prepare(key_bump_version, sql::key_bump_version)
         && prepare(key_version, sql::key_version)
         && prepare(key_select_valid, sql::key_select_valid)
         && prepare(key_list_valid, sql::key_list_valid);
}

bool store::statements::purge_expired_keys(const std::string& id, model::millis now) {
  bind(key_purge_expired, 1, id);
  bind(key_purge_expired, 2, now);
  return run(key_purge_expired, "cannot delete expired keys");
}

bool store::statements::insert_key(const model::key_entry& k) {
  bind(key_insert, 1, k.id);
  bind(key_insert, 2, std::string{model::to_string(k.r)});
  bind(key_insert, 3, k.secret);
  bind(key_insert, 4, k.created_at);
  bind(key_insert, 5, k.expires_at);
  return run(key_insert, "cannot store key")
         && run(key_bump_version, "cannot bump the key version");
}

store::key_outcome store::add_key(const model::key_entry& key) {
  auto& st = *st_;
  auto outcome = key_outcome::done;
  bool ok = st.transaction([&] {
    bind(st.key_valid_count, 1, key.id);
    bind(st.key_valid_count, 2, key.created_at);
    int64_t valid = 0;
    if (!one_integer(st.key_valid_count, valid))
      return st.fail("cannot count the keys of " + key.id);
    if (valid > 0) {
      outcome = key_outcome::exists;
      return false;  // nothing to commit
    }
    return st.purge_expired_keys(key.id, key.created_at) && st.insert_key(key);
  });
  if (outcome == key_outcome::exists)
    return outcome;
  return ok ? key_outcome::done : key_outcome::failed;
}

store::key_outcome store::revoke_keys(const std::string& id, uint32_t& removed) {
  auto& st = *st_;
  removed = 0;
  auto outcome = key_outcome::done;
  bool ok = st.transaction([&] {
    bind(st.key_delete, 1, id);
    if (!st.run(st.key_delete, "cannot delete keys"))
      return false;
    removed = static_cast<uint32_t>(db_->changes());
    if (removed == 0) {
      outcome = key_outcome::unknown;
      return false;  // nothing changed: no new version
    }
    return st.run(st.key_bump_version, "cannot bump the key version");
  });
  if (outcome == key_outcome::unknown)
    return outcome;
  return ok ? key_outcome::done : key_outcome::failed;
}

store::key_outcome store::rotate_key(model::key_entry& fresh, model::millis old_expire_at) {
  auto& st = *st_;
  auto outcome = key_outcome::done;
  bool ok = st.transaction([&] {
    bind(st.key_current_role, 1, fresh.id);
    bind(st.key_current_role, 2, fresh.created_at);
    db::step_result rc = st.key_current_role->step();
    std::string role_text = rc == db::step_result::row ? column_text(st.key_current_role, 0) : "";
    st.key_current_role->reset();
    if (rc == db::step_result::done) {
      outcome = key_outcome::unknown;
      return false;
    }
    if (rc != db::step_result::row)
      return st.fail("cannot read the keys of " + fresh.id);
    if (!read_role(role_text, fresh.r))
      return st.fail("bad role '" + role_text + "' of a key of " + fresh.id);
    if (!st.purge_expired_keys(fresh.id, fresh.created_at))
      return false;
    bind(st.key_expire, 1, fresh.id);
    bind(st.key_expire, 2, old_expire_at);
    return st.run(st.key_expire, "cannot set the expiry of the previous keys")
           && st.insert_key(fresh);
  });
  if (outcome == key_outcome::unknown)
    return outcome;
  return ok ? key_outcome::done : key_outcome::failed;
}

bool store::list_keys(model::millis now, std::vector<model::key_info>& out) {
  db_->healthy();  // a lost connection is replaced between calls, never within one
  auto s = st_->key_list_valid;
  out.clear();
  bind(s, 1, now);
  db::step_result rc;
  while ((rc = s->step()) == db::step_result::row) {
    model::key_info k;
    k.id = column_text(s, 0);
    if (!read_role(column_text(s, 1), k.r))
      continue;  // the schema's CHECK keeps others out
    k.created_at = s->integer(2);
    k.expires_at = s->integer(3);
    out.push_back(std::move(k));
  }
  s->reset();
  if (rc != db::step_result::done)
    return st_->fail("cannot list keys");
  return true;
}

bool store::load_keys(model::millis now, model::key_table& out) {
  db_->healthy();  // a lost connection is replaced between calls, never within one
  auto& st = *st_;
  out = {};
  if (!st.run(st.begin_read, "cannot begin a read transaction"))
    return false;
  int64_t version = 0;
  bool ok = one_integer(st.key_version, version) || st.fail("cannot read the key version");
  auto s = st.key_select_valid;
  if (ok) {
    bind(s, 1, now);
    db::step_result rc;
    while ((rc = s->step()) == db::step_result::row) {
      model::key_entry k;
      k.id = column_text(s, 0);
      if (!read_role(column_text(s, 1), k.r))
        continue;
      k.secret = column_text(s, 2);
      k.created_at = s->integer(3);
      k.expires_at = s->integer(4);
      out.keys.push_back(std::move(k));
    }
    s->reset();
    ok = rc == db::step_result::done || st.fail("cannot load keys");
  }
  // Ends the read transaction (COMMIT of a read changes nothing).
  if (db_->in_transaction() && !st.run(st.commit, "cannot end the read transaction"))
    ok = false;
  out.version = static_cast<uint64_t>(version);
  if (!ok)
    out = {};
  return ok;
}

bool store::key_version(uint64_t& out) {
  db_->healthy();  // a lost connection is replaced between calls, never within one
  int64_t v = 0;
  if (!one_integer(st_->key_version, v))
    return st_->fail("cannot read the key version");
  out = static_cast<uint64_t>(v);
  return true;
}

}  // namespace coapfleet::server
