// The SQLite store: schema, migrations and prepared statements. Only the
// persistence actor uses it (one thread); it is a plain class so that it can
// be unit-tested on a real file without an actor system.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/persistence.hpp"
#include "model/types.hpp"

struct sqlite3;

namespace coapfleet::server {

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
  /// Opens (creating if needed) the database at `path`, sets WAL mode and
  /// synchronous=FULL, and migrates the schema to the current version.
  /// Returns null and sets `error` on failure.
  static std::unique_ptr<store> open(const std::string& path, std::string& error);
  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  /// Current schema version (PRAGMA user_version after migration).
  static constexpr int schema_version = 1;

  /// Applies all writes in one transaction (group commit): all or nothing.
  /// Returns false and sets last_error() on failure (then nothing changed).
  bool apply(const std::vector<write_op>& ops);

  /// Every node with its latest health (has_health set when there is one).
  /// `status` is left online; the caller computes liveness.
  std::vector<model::node_record> load_nodes();
  /// Every job with its node states (sorted by node_id), oldest first.
  std::vector<model::job_record> load_jobs();

  /// Runs a trivial query; false when the database does not answer.
  bool ping();
  /// How long a write waits for another connection's lock before it fails
  /// (5 s from open()).
  void set_busy_timeout(int ms);
  /// Runs a WAL checkpoint (TRUNCATE); used at shutdown.
  void checkpoint();

  const std::string& last_error() const { return error_; }
  const std::string& path() const { return path_; }

private:
  store() = default;
  struct statements;
  sqlite3* db_ = nullptr;
  std::unique_ptr<statements> st_;
  std::string error_;
  std::string path_;
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
