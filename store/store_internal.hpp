// Internal to store/: the SQL text's names, the binding helpers and the
// prepared statements that store.cpp (nodes, jobs, health) and
// store_keys.cpp (keys) share.
#pragma once

#include <sqlite3.h>

#include <string>

#include "model/json.hpp"
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
}  // namespace sql

inline std::string column_text(sqlite3_stmt* s, int i) {
  auto p = sqlite3_column_text(s, i);
  return p ? std::string{reinterpret_cast<const char*>(p),
                         static_cast<size_t>(sqlite3_column_bytes(s, i))}
           : std::string{};
}

inline void bind(sqlite3_stmt* s, int i, const std::string& v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}
/// Binds NULL for an empty (absent) optional string.
inline void bind_opt(sqlite3_stmt* s, int i, const std::string& v) {
  if (v.empty())
    sqlite3_bind_null(s, i);
  else
    bind(s, i, v);
}
inline void bind(sqlite3_stmt* s, int i, int64_t v) { sqlite3_bind_int64(s, i, v); }
/// Binds a JSON object of strings, or NULL when empty.
inline void bind_map(sqlite3_stmt* s, int i, const model::string_map& m) {
  if (m.empty())
    sqlite3_bind_null(s, i);
  else
    bind(s, i, model::encode_string_map(m));
}

/// A row of sql::select_nodes (or a statement with its columns) as a node
/// record, status left online. Returns "" or what could not be decoded.
std::string decode_node_row(sqlite3_stmt* s, model::node_record& n);

/// The prepared statements, plus the helpers that need the store's private
/// state (a nested class has access to it).
struct store::statements {
  store& self;
  sqlite3_stmt *begin = nullptr, *commit = nullptr, *rollback = nullptr, *ping = nullptr,
               *checkpoint = nullptr, *upsert_node = nullptr, *upsert_health = nullptr,
               *touch_node = nullptr, *insert_job = nullptr, *update_job = nullptr,
               *upsert_state = nullptr, *select_nodes = nullptr, *select_jobs = nullptr,
               *select_states = nullptr, *delete_job = nullptr, *select_node = nullptr,
               *select_briefs = nullptr, *delete_node = nullptr, *update_traits = nullptr;
  // keys (store_keys.cpp)
  sqlite3_stmt *begin_read = nullptr, *key_valid_count = nullptr, *key_purge_expired = nullptr,
               *key_insert = nullptr, *key_delete = nullptr, *key_current_role = nullptr,
               *key_expire = nullptr, *key_bump_version = nullptr, *key_version = nullptr,
               *key_select_valid = nullptr, *key_list_valid = nullptr;
  // audit (store_audit.cpp)
  sqlite3_stmt *audit_insert = nullptr, *audit_prune = nullptr, *audit_page = nullptr,
               *audit_count = nullptr;
  // history (store_history.cpp)
  sqlite3_stmt *history_by_node = nullptr, *history_by_job = nullptr, *history_trim = nullptr;

  explicit statements(store& s) : self(s) {}
  ~statements() {
    for (sqlite3_stmt* s : {begin, commit, rollback, ping, checkpoint, upsert_node,
                            upsert_health, touch_node, insert_job, update_job, upsert_state,
                            select_nodes, select_jobs, select_states, delete_job, select_node,
                            select_briefs, delete_node, update_traits, begin_read,
                            key_valid_count, key_purge_expired, key_insert, key_delete,
                            key_current_role, key_expire, key_bump_version, key_version,
                            key_select_valid, key_list_valid, audit_insert, audit_prune,
                            audit_page, audit_count, history_by_node, history_by_job,
                            history_trim})
      sqlite3_finalize(s);  // a no-op on null
  }

  bool fail(const std::string& what, const char* msg = nullptr) {
    self.error_ = self.path_ + ": " + what + ": "
                  + (msg ? msg : self.db_ ? sqlite3_errmsg(self.db_) : "out of memory");
    return false;
  }

  bool exec(const char* sql, const std::string& what) {
    char* msg = nullptr;
    bool ok = sqlite3_exec(self.db_, sql, nullptr, nullptr, &msg) == SQLITE_OK;
    if (!ok)
      fail(what, msg);
    sqlite3_free(msg);
    return ok;
  }

  /// Runs an ad-hoc one-row statement and returns its first column.
  bool query_text(const char* sql, std::string& out) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(self.db_, sql, -1, &s, nullptr) != SQLITE_OK)
      return fail(std::string{"cannot prepare '"} + sql + "'");
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
      out = column_text(s, 0);
    bool ok = rc == SQLITE_ROW || rc == SQLITE_DONE;
    if (!ok)
      fail(std::string{"cannot run '"} + sql + "'");
    sqlite3_finalize(s);
    return ok;
  }

  /// Steps a write statement to completion, then resets and unbinds it.
  bool run(sqlite3_stmt* s, const char* what) {
    int rc = sqlite3_step(s);
    bool ok = rc == SQLITE_DONE || rc == SQLITE_ROW;
    if (!ok)
      fail(what);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return ok;
  }

  bool prepare(sqlite3_stmt*& s, const char* text) {
    if (sqlite3_prepare_v3(self.db_, text, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr)
        == SQLITE_OK)
      return true;
    return fail(std::string{"cannot prepare '"} + text + "'");
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

  bool migrate();
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
    if (!run(begin, "cannot begin transaction"))
      return false;
    if (work() && run(commit, "cannot commit transaction"))
      return true;
    if (!sqlite3_get_autocommit(self.db_)) {  // some errors roll back on their own
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
  bool write_state(const std::string& job_id, const model::node_job_state& st);
};

}  // namespace coapfleet::server
