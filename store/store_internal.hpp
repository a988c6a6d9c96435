// Internal to store/: the SQL text's names, the binding helpers and the
// prepared statements that store.cpp (nodes, jobs, health) and
// store_keys.cpp (keys) share.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/json.hpp"
#include "store/db.hpp"
#include "store/store.hpp"

namespace coapfleet::server {

// The SQL text, in store_sql.cpp.
namespace sql {
extern const char* const schema_v1;
extern const char* const schema_v2;
extern const char* const schema_v3;
extern const char* const schema_v4;
extern const char* const schema_v5;
extern const char* const schema_v6;
extern const char* const schema_v7;
extern const char* const schema_v8;
extern const char* const schema_v9;
extern const char *const select_holders, *const upsert_holder, *const delete_holder,
    *const take_holder_none, *const take_holder_from;
extern const char* const update_traits;
extern const char* const history_by_node;
extern const char* const history_by_job;
extern const char* const history_trim;
extern const char *const upsert_node, *const upsert_health, *const touch_node,
    *const insert_job, *const update_job, *const upsert_state, *const select_nodes,
    *const select_jobs, *const select_states, *const select_nodes_after, *const select_node,
    *const select_briefs;
extern const char *const key_valid_count, *const key_purge_expired, *const key_insert,
    *const key_delete, *const key_current_role, *const key_expire, *const key_bump_version,
    *const key_version, *const key_select_valid, *const key_list_valid;
extern const char *const audit_insert, *const audit_prune, *const audit_page,
    *const audit_count;
namespace pg {  // PostgreSQL's own text where it differs
extern const char *const schema_current, *const schema_v8, *const schema_v9, *const insert_job,
    *const select_briefs;
}  // namespace pg
}  // namespace sql

using stmt = db::statement*;

inline std::string column_text(stmt s, int i) { return s->text(i); }

inline void bind(stmt s, int i, const std::string& v) { s->bind_text(i, v); }
/// Binds NULL for an empty (absent) optional string.
inline void bind_opt(stmt s, int i, const std::string& v) {
  if (v.empty())
    s->bind_null(i);
  else
    bind(s, i, v);
}
inline void bind(stmt s, int i, int64_t v) { s->bind_int(i, v); }
/// Binds a JSON object of strings, or NULL when empty.
inline void bind_map(stmt s, int i, const model::string_map& m) {
  if (m.empty())
    s->bind_null(i);
  else
    bind(s, i, model::encode_string_map(m));
}

/// A row of sql::select_nodes (or a statement with its columns) as a node
/// record, status left online. Returns "" or what could not be decoded.
std::string decode_node_row(stmt s, model::node_record& n);

/// The prepared statements, plus the helpers that need the store's private
/// state (a nested class has access to it).
struct store::statements {
  store& self;
  stmt begin = nullptr, commit = nullptr, rollback = nullptr, ping = nullptr,
       checkpoint = nullptr, upsert_node = nullptr, upsert_health = nullptr,
       touch_node = nullptr, insert_job = nullptr, update_job = nullptr,
       upsert_state = nullptr, select_nodes = nullptr, select_jobs = nullptr,
       select_states = nullptr, delete_job = nullptr, select_node = nullptr,
       select_briefs = nullptr, delete_node = nullptr, update_traits = nullptr;
  // keys (store_keys.cpp)
  stmt begin_read = nullptr, key_valid_count = nullptr, key_purge_expired = nullptr,
       key_insert = nullptr, key_delete = nullptr, key_current_role = nullptr,
       key_expire = nullptr, key_bump_version = nullptr, key_version = nullptr,
       key_select_valid = nullptr, key_list_valid = nullptr;
  // audit (store_audit.cpp)
  stmt audit_insert = nullptr, audit_prune = nullptr, audit_page = nullptr,
       audit_count = nullptr;
  // the member's lease (store::set_fence)
  stmt fence = nullptr;
  // history (store_history.cpp)
  stmt history_by_node = nullptr, history_by_job = nullptr, history_trim = nullptr;
  // job holders (store_holders.cpp)
  stmt select_holders = nullptr, upsert_holder = nullptr, delete_holder = nullptr,
       take_holder_none = nullptr, take_holder_from = nullptr;

  std::vector<std::unique_ptr<db::statement>> owned;

  explicit statements(store& s) : self(s) {}
  bool pg() const { return self.db_->kind() == db::engine::postgresql; }

  bool fail(const std::string& what, const char* msg = nullptr) {
    self.error_ = self.path_ + ": " + what + ": " + (msg ? msg : self.db_->error());
    return false;
  }

  bool exec(const char* sql, const std::string& what) {
    return self.db_->exec(sql) || fail(what);
  }

  /// Runs an ad-hoc one-row statement and returns its first column.
  bool query_text(const char* sql, std::string& out) {
    return self.db_->query_text(sql, out) || fail(std::string{"cannot run '"} + sql + "'");
  }

  /// Steps a write statement to completion, then resets and unbinds it.
  bool run(stmt s, const char* what) {
    auto rc = s->step();
    bool ok = rc != db::step_result::error;
    if (!ok)
      fail(what);
    s->reset();
    return ok;
  }

  bool prepare(stmt& s, const char* text) {
    auto p = self.db_->prepare(text);
    if (!p)
      return fail(std::string{"cannot prepare '"} + text + "'");
    s = p.get();
    owned.push_back(std::move(p));
    return true;
  }

  /// Keeps a decoded JSON column; a bad one is left default and noted in
  /// last_error() (loading goes on: one bad row must not hide the others).
  template <class T>
  bool take(model::decoded<T>&& d, T& into, const char* column, const std::string& id) {
    if (!d.ok()) {
      self.error_ = self.path_ + ": cannot decode " + column + " of " + id + ": " + d.err.error;
      return false;
    }
    into = std::move(d.value);
    return true;
  }

  bool setup_sqlite();
  bool migrate();
  bool migrate_postgresql();
  bool finish_migration(bool ok);
  bool prepare_all();
  // keys (store_keys.cpp)
  bool prepare_keys();
  /// Deletes the keys of `id` that expired by `now`.
  bool purge_expired_keys(const std::string& id, model::millis now);
  bool insert_key(const model::key_entry& k);
  // history (store_history.cpp)
  bool prepare_history();
  // audit (store_audit.cpp)
  bool prepare_audit();
  /// Drops the oldest audit rows beyond the keep limit.
  bool prune_audit();

  /// Runs `work` inside BEGIN IMMEDIATE ... COMMIT; rolls back when it
  /// returns false or the commit fails.
  template <class F>
  bool transaction(F&& work) {
    if (!self.db_->healthy())  // reconnects a lost connection, before the transaction only
      return fail("cannot reach the store");
    if (!run(begin, "cannot begin transaction"))
      return false;
    if (work() && run(commit, "cannot commit transaction"))
      return true;
    if (self.db_->in_transaction()) {  // some errors roll back on their own
      std::string keep = self.error_;
      run(rollback, "cannot roll back");
      self.error_ = keep;
    }
    return false;
  }

  bool write(const put_node& op);
  bool write(const put_health& op);
  bool write(const put_job& op);
  bool write(const put_job_status& op);
  bool write(const put_node_state& op);
  bool write(const drop_job& op);
  bool write(const model::drop_node& op);
  bool write(const model::put_node_traits& op);
  bool write(const model::put_audit& op);
  bool write(const model::put_job_holder& op);
  bool prepare_holders();
  bool write_state(const std::string& job_id, const model::node_job_state& st);
};

}  // namespace coapfleet::server
