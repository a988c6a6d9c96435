// Internal to store/: the two SQL engines behind one small interface, so
// that the store's logic (store*.cpp) and the reader are written once.
// SQLite is the embedded default; PostgreSQL (libpq) is the store a cluster's
// members share. SQL text is written with SQLite's numbered parameters
// (?1, ?2, ...); the PostgreSQL driver turns them into $1, $2, ... .
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

struct sqlite3;

namespace coapfleet::server::db {

enum class engine : uint8_t { sqlite, postgresql };

enum class step_result : uint8_t { row, done, error };

/// A prepared statement. Bind, then step(): the first step runs it; each
/// row is read with the column accessors until step() says done. reset()
/// ends the run (whatever rows were not read are dropped) and clears the
/// bindings.
class statement {
public:
  virtual ~statement() = default;
  virtual void bind_text(int i, std::string_view v) = 0;
  /// Bytes, any of them NUL (a BLOB column; PostgreSQL's BYTEA).
  virtual void bind_blob(int i, std::string_view v) = 0;
  virtual void bind_int(int i, int64_t v) = 0;
  virtual void bind_null(int i) = 0;
  virtual step_result step() = 0;
  virtual bool is_null(int col) const = 0;
  virtual std::string text(int col) const = 0;
  /// A BLOB (BYTEA) column's bytes.
  virtual std::string blob(int col) const = 0;
  virtual int64_t integer(int col) const = 0;
  virtual void reset() = 0;
};

class connection {
public:
  virtual ~connection() = default;
  virtual engine kind() const = 0;
  /// Null (error() says why) when the text does not prepare. PostgreSQL
  /// prepares on the first run, with the types of its first bindings.
  virtual std::unique_ptr<statement> prepare(const char* sql) = 0;
  /// Runs one or more statements without parameters or results.
  virtual bool exec(const char* sql) = 0;
  /// Runs a one-row query and returns its first column as text ("" for NULL
  /// or no row).
  virtual bool query_text(const char* sql, std::string& out) = 0;
  /// Rows the last write statement changed.
  virtual int64_t changes() const = 0;
  /// Whether a transaction is open.
  virtual bool in_transaction() const = 0;
  /// The engine's message about the last failure.
  virtual std::string error() const = 0;
  /// Whether the connection is usable; PostgreSQL reconnects here when it
  /// was lost (prepared statements prepare again on their next run), and
  /// only here: a statement on a lost connection fails, so a transaction
  /// never goes on in a new session. Call it before a transaction.
  virtual bool healthy() = 0;
  /// How long a call waits: SQLite for another connection's lock,
  /// PostgreSQL for the server's answer.
  virtual void set_timeout(int ms) = 0;
  /// A session setting (PostgreSQL's SET ...) applied now and again on
  /// every new connection; SQLite has none (true).
  virtual bool add_session_setting(const std::string& sql) = 0;
  /// Drops the connection at once, whatever a statement has not read
  /// (PostgreSQL: no draining of an abandoned listing).
  virtual void abandon() = 0;
};

/// Whether `location` names a PostgreSQL database (postgresql:// or
/// postgres:// URI) rather than a SQLite file.
bool is_postgresql(std::string_view location);

/// `location` without its password (for logs and errors).
std::string redacted(std::string_view location);

/// Opens a SQLite file (read-write, created if missing) or, read-only, an
/// existing one. Null with `error` set on failure.
std::unique_ptr<connection> open_sqlite(const std::string& path, bool read_only,
                                        std::string& error);

/// Connects to PostgreSQL (a libpq URI). A read-only connection refuses
/// writes. Null with `error` set on failure.
std::unique_ptr<connection> open_postgresql(const std::string& uri, bool read_only,
                                            std::string& error);

/// The SQLite handle of a SQLite connection (its pragmas and checkpoint).
::sqlite3* native_sqlite(connection& c);

}  // namespace coapfleet::server::db
