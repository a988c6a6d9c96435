// Helpers of the store tests on real databases. Every test runs on SQLite
// (a file in a temporary directory); when COAPFLEET_TEST_PG names a
// PostgreSQL database (ctest's store_tests_postgresql starts one with
// deploy/pg.sh), the tests not in the "sqlite" suite run there too, each in
// a schema of its own. Raw SQL runs on a second connection, as another
// process would see the database.
#pragma once

#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "store/store.hpp"

namespace coapfleet::server::testing {

/// The PostgreSQL database the tests run on, or "" for SQLite.
inline std::string test_postgresql() {
  const char* uri = std::getenv("COAPFLEET_TEST_PG");
  return uri ? uri : "";
}

inline bool is_pg(const std::string& location) {
  return location.rfind("postgresql://", 0) == 0;
}

/// Runs SQL on a separate connection; the first column of the first row.
inline std::string raw(const std::string& location, const std::string& sql) {
  std::string out;
  if (is_pg(location)) {
    PGconn* c = PQconnectdb(location.c_str());
    REQUIRE(PQstatus(c) == CONNECTION_OK);
    PGresult* r = PQexec(c, sql.c_str());
    auto st = PQresultStatus(r);
    INFO(sql << ": " << PQresultErrorMessage(r));
    CHECK((st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK));
    if (st == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
      out = PQgetvalue(r, 0, 0);
    PQclear(r);
    PQfinish(c);
    return out;
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(location.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
  if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
    out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

/// A fresh database: a SQLite file in a temporary directory, or a schema of
/// its own in the PostgreSQL database (dropped at the end).
struct temp_db {
  std::string dir;
  std::string pg_base, schema;
  temp_db() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "store_test.XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    dir = tmpl;
    pg_base = test_postgresql();
    if (!pg_base.empty()) {
      static std::atomic<int> n{0};
      schema = "t" + std::to_string(::getpid()) + "_" + std::to_string(++n);
      raw(pg_base, "DROP SCHEMA IF EXISTS " + schema + " CASCADE");
      raw(pg_base, "CREATE SCHEMA " + schema);
    }
  }
  ~temp_db() {
    if (!schema.empty())
      raw(pg_base, "DROP SCHEMA IF EXISTS " + schema + " CASCADE");
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  temp_db(const temp_db&) = delete;
  temp_db& operator=(const temp_db&) = delete;
  bool pg() const { return !schema.empty(); }
  /// The location to open: a file, or a URI whose search_path is the schema.
  std::string path() const {
    if (schema.empty())
      return dir + "/fleet.db";
    return pg_base + (pg_base.find('?') == std::string::npos ? "?" : "&")
           + "options=-csearch_path%3D" + schema;
  }
  /// A SQLite file in the directory, whatever the engine (tests of SQLite).
  std::string file() const { return dir + "/fleet.db"; }
};

inline std::unique_ptr<store> open_ok(const std::string& path) {
  std::string err;
  auto s = store::open(path, err);
  INFO(err);
  REQUIRE(s != nullptr);
  return s;
}

/// What a server of schema v8 left behind (no artifacts in the store).
inline void undo_v9(const std::string& path) {
  raw(path, "DROP TABLE artifacts");
  raw(path, "DROP TABLE artifact_chunks");
  raw(path, "PRAGMA user_version = 8");
}

/// What a server of schema v7 left behind (no job holders).
inline void undo_v8(const std::string& path) {
  undo_v9(path);
  raw(path, "DROP TABLE job_holders");
  raw(path, "PRAGMA user_version = 7");
}

/// What a server of schema v6 left behind (no members).
inline void undo_v7(const std::string& path) {
  undo_v8(path);
  raw(path, "DROP TABLE members");
  raw(path, "DELETE FROM meta WHERE name = 'member_epoch'");
  raw(path, "PRAGMA user_version = 6");
}

/// What a server of schema v5 left behind (no labels, no inventory).
inline void undo_v6(const std::string& path) {
  undo_v7(path);
  raw(path, "ALTER TABLE nodes DROP COLUMN labels");
  raw(path, "ALTER TABLE nodes DROP COLUMN inventory");
  raw(path, "ALTER TABLE nodes DROP COLUMN operator_labels");
  raw(path, "PRAGMA user_version = 5");
}

/// What a server of schema v4 left behind.
inline void undo_v5(const std::string& path) {
  undo_v6(path);
  raw(path, "DROP TRIGGER job_nodes_history_insert");
  raw(path, "DROP TRIGGER job_nodes_history_update");
  raw(path, "DROP TABLE job_history");
  raw(path, "ALTER TABLE job_nodes DROP COLUMN attempt");
  raw(path, "ALTER TABLE job_nodes DROP COLUMN started_at");
  raw(path, "ALTER TABLE job_nodes DROP COLUMN wave");
  raw(path, "ALTER TABLE job_nodes DROP COLUMN retry_at");
  raw(path, "ALTER TABLE jobs DROP COLUMN campaign");
  raw(path, "PRAGMA user_version = 4");
}

}  // namespace coapfleet::server::testing
