// The store: schema, migrations and prepared statements, on SQLite or
// PostgreSQL. Only the persistence actor uses it (one thread); it is a plain
// class so that it can be unit-tested on a real database without an actor
// system.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/access.hpp"
#include "model/audit.hpp"
#include "model/history.hpp"
#include "model/persistence.hpp"
#include "model/types.hpp"

struct sqlite3;

namespace coapfleet::server {

namespace db {
class connection;
}

// The write operations are model values (model/persistence.hpp).
using model::drop_job;
using model::put_health;
using model::put_job;
using model::put_job_status;
using model::put_node;
using model::put_node_state;
using model::write_op;

class store {
public:
  /// Opens the store at `location` and migrates the schema to the current
  /// version: a SQLite file (created if needed; WAL mode, synchronous=FULL)
  /// or a PostgreSQL database (a postgresql:// URI; libpq). Returns null
  /// and sets `error` on failure.
  static std::unique_ptr<store> open(const std::string& location, std::string& error);
  /// Whether `location` is a PostgreSQL URI (postgresql:// or postgres://).
  static bool names_postgresql(const std::string& location);
  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  /// Current schema version (PRAGMA user_version after migration):
  /// 1 nodes, health, jobs; 2 keys and the key version; 3 the audit log;
  /// 4 reported addresses; 5 attempts, history; 6 labels, inventory; 7 members;
  /// 8 job holders.
  static constexpr int schema_version = 9;

  /// Applies all writes in one transaction (group commit): all or nothing.
  /// Returns false and sets last_error() on failure (then nothing changed).
  /// With a fence set, the transaction first checks the member's lease in
  /// the same transaction and fails (fenced() then says so) when it lapsed or
  /// another join replaced its epoch: a member cut off from the cluster
  /// writes nothing.
  bool apply(const std::vector<write_op>& ops);

  /// Fences every later apply() with this member's lease (a cluster member
  /// sets it after each join; an empty id removes the fence). The check is
  /// the transaction's last statement before COMMIT and asks for at least
  /// half the lease left; on PostgreSQL a transaction idle for a quarter of
  /// the lease is ended by the server (idle_in_transaction_session_timeout),
  /// so a COMMIT held up on the way cannot land after the lease lapsed.
  /// `lease_ms` is given with the first fence (0: keep the one given).
  bool set_fence(const std::string& member_id, uint64_t epoch, int64_t lease_ms = 0);
  /// Whether the last failed apply() failed on the fence.
  bool fenced() const { return fenced_; }

  /// Every node with its latest health (has_health set when there is one).
  /// `status` is left online; the caller computes liveness.
  std::vector<model::node_record> load_nodes();
  /// One node with its latest health; nullopt when it is not registered (or
  /// the read failed: last_error() says so).
  std::optional<model::node_record> load_node(const std::string& id);
  /// Every node's brief (start-up): no list or report decoded but the
  /// error messages of unhealthy nodes.
  std::vector<model::node_brief> load_briefs();
  /// Every job with its node states (sorted by node_id), oldest first.
  std::vector<model::job_record> load_jobs();

  /// A cluster member's share of the jobs (store_holders.cpp), in one fenced
  /// transaction. Each job belongs to the live member that rendezvous
  /// hashing of its id picks (model::owner_of over `live`). A job of `me`
  /// that no live member holds (none, or one whose lease lapsed) becomes
  /// `me`'s and is listed in `claimed`, as is one `me` holds but is not in
  /// `held` (after a restart or a fence); one a live member still holds
  /// counts in `waiting` (that member lets go once it sees the same live
  /// members). A job `me` holds that is no longer its, and is not in
  /// `held` (its scheduler has stopped), is let go. False on a failure
  /// (fenced() says whether it was the lease).
  bool claim_jobs(const std::string& me, const std::vector<std::string>& live,
                  const std::vector<std::string>& held, std::vector<std::string>& claimed,
                  uint32_t& waiting, std::vector<std::string>* known = nullptr);

  // -- keys (store_keys.cpp) --------------------------------------------------------
  // Every change is one transaction of its own that also bumps the key
  // version, so that another process (a running server) sees it by reading
  // the version. A key is valid at `now` while expires_at is 0 or later than `now`.

  /// What a key operation found.
  enum class key_outcome : uint8_t {
    done,
    exists,   ///< add: the identity already has a valid key
    unknown,  ///< revoke, rotate: the identity has no (valid) key
    failed,   ///< a database error (last_error())
  };
  /// Adds `key` (valid from key.created_at, which is "now"), unless its
  /// identity has a valid key then. Expired keys of the identity go.
  key_outcome add_key(const model::key_entry& key);
  /// Deletes every key of `id`; `removed` says how many there were.
  key_outcome revoke_keys(const std::string& id, uint32_t& removed);
  /// Rotation at fresh.created_at ("now"): the identity's valid keys expire at
  /// `old_expire_at` (unless they expire sooner), its expired keys go, and
  /// `fresh` is added with the role of its newest valid key, which is filled
  /// in. `unknown` when the identity has no valid key.
  key_outcome rotate_key(model::key_entry& fresh, model::millis old_expire_at);
  /// The keys valid at `now`, without secrets, sorted by id, newest first.
  bool list_keys(model::millis now, std::vector<model::key_info>& out);
  /// The keys valid at `now` with the key version they belong to (read in one
  /// transaction), sorted by id, newest first.
  bool load_keys(model::millis now, model::key_table& out);
  /// The key version: changes with every committed key change, whoever made it.
  bool key_version(uint64_t& out);

  // -- audit (store_audit.cpp) --------------------------------------------------------
  // Records are written by apply() (model::put_audit), and a transaction that
  // wrote any also drops the oldest rows beyond the keep limit.

  /// The number of audit rows kept (default model::audit_default_keep; at least 1).
  void set_audit_keep(uint64_t rows);
  uint64_t audit_keep() const { return audit_keep_; }
  /// The audit records the last successful apply() stored, with their seq.
  std::vector<model::audit_record> take_audited();
  /// A page: records below q.before (0: the newest), newest first, at most
  /// q.limit; next is the last record's seq when an older one exists.
  bool audit_page(const model::audit_query& q, model::audit_page& out);
  /// How many audit rows there are.
  bool audit_count(uint64_t& out);

  /// A page of node-state history: entries of q.id (a node, or a job when
  /// q.by_job) below q.before (0: the newest), newest first, at most
  /// q.limit; next is the last entry's seq when an older one exists.
  bool history_page(const model::history_query& q, model::history_page& out);
  /// Drops history entries older than `before` (ms since the epoch); how
  /// many went in `dropped`.
  bool trim_history(model::millis before, uint64_t& dropped);

  /// Runs a trivial query; false when the database does not answer.
  bool ping();
  /// How long a write waits for another connection's lock before it fails
  /// (5 s from open()).
  void set_busy_timeout(int ms);
  /// Runs a WAL checkpoint (TRUNCATE); used at shutdown.
  void checkpoint();

  const std::string& last_error() const { return error_; }
  /// The file, or the PostgreSQL URI without its password.
  const std::string& path() const { return path_; }
  /// Whether the store is PostgreSQL (shared by a cluster's members).
  bool postgresql() const;

private:
  store() = default;
  bool check_fence();
  struct statements;
  std::unique_ptr<db::connection> db_;
  std::unique_ptr<statements> st_;
  std::string error_;
  std::string path_;
  uint64_t audit_keep_ = model::audit_default_keep;
  std::vector<model::audit_record> audited_;
  std::string fence_member_;
  uint64_t fence_epoch_ = 0;
  int64_t fence_lease_ms_ = 0;
  bool fenced_ = false;
};

/// Another connection that holds the database's write lock while it lives,
/// as another program might (`BEGIN EXCLUSIVE`): the store's writes wait
/// for it up to their busy timeout and then fail. For tests of what a failed
/// commit does, and for tools that must keep the server from writing.
class write_lock {
public:
  /// Opens `path` and takes the lock; ok() tells whether that worked.
  explicit write_lock(const std::string& path);
  ~write_lock();
  write_lock(const write_lock&) = delete;
  write_lock& operator=(const write_lock&) = delete;
  bool ok() const { return ok_; }

private:
  sqlite3* db_ = nullptr;
  bool ok_ = false;
};

}  // namespace coapfleet::server
