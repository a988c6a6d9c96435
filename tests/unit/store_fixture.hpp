// Helpers of the store tests that work on real files: a temporary directory
// per test, opening a store that must open, and SQL on a second connection
// (as another process would see the file).
#pragma once

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "store/store.hpp"

namespace coapfleet::server::testing {

struct temp_db {
  std::string dir;
  temp_db() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "store_test.XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    dir = tmpl;
  }
  ~temp_db() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  temp_db(const temp_db&) = delete;
  temp_db& operator=(const temp_db&) = delete;
  std::string path() const { return dir + "/fleet.db"; }
};

inline std::unique_ptr<store> open_ok(const std::string& path) {
  std::string err;
  auto s = store::open(path, err);
  INFO(err);
  REQUIRE(s != nullptr);
  return s;
}

/// Runs SQL on a separate connection; the first column of the first row.
inline std::string raw(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  std::string out;
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
  if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
    out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

/// Takes a database back to what a server of schema v4 left behind.
/// What a server of schema v5 left behind (no labels, no inventory).
inline void undo_v6(const std::string& path) {
  raw(path, "ALTER TABLE nodes DROP COLUMN labels");
  raw(path, "ALTER TABLE nodes DROP COLUMN inventory");
  raw(path, "ALTER TABLE nodes DROP COLUMN operator_labels");
  raw(path, "PRAGMA user_version = 5");
}

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
