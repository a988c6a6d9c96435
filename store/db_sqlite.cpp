// The SQLite driver of store/db.hpp.
#include <sqlite3.h>

#include "store/db.hpp"
#include "store/store.hpp"

namespace coapfleet::server::db {

namespace {

class sqlite_statement final : public statement {
public:
  explicit sqlite_statement(sqlite3_stmt* s) : s_(s) {}
  ~sqlite_statement() override { sqlite3_finalize(s_); }
  void bind_text(int i, std::string_view v) override {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void bind_blob(int i, std::string_view v) override {
    sqlite3_bind_blob64(s_, i, v.data(), v.size(), SQLITE_TRANSIENT);
  }
  void bind_int(int i, int64_t v) override { sqlite3_bind_int64(s_, i, v); }
  void bind_null(int i) override { sqlite3_bind_null(s_, i); }
  step_result step() override {
    int rc = sqlite3_step(s_);
    return rc == SQLITE_ROW ? step_result::row
           : rc == SQLITE_DONE ? step_result::done
                               : step_result::error;
  }
  bool is_null(int col) const override { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  std::string text(int col) const override {
    auto p = sqlite3_column_text(s_, col);
    return p ? std::string{reinterpret_cast<const char*>(p),
                           static_cast<size_t>(sqlite3_column_bytes(s_, col))}
             : std::string{};
  }
  std::string blob(int col) const override {
    auto p = sqlite3_column_blob(s_, col);
    return p ? std::string{static_cast<const char*>(p),
                           static_cast<size_t>(sqlite3_column_bytes(s_, col))}
             : std::string{};
  }
  int64_t integer(int col) const override { return sqlite3_column_int64(s_, col); }
  void reset() override {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }

private:
  sqlite3_stmt* s_;
};

class sqlite_connection final : public connection {
public:
  explicit sqlite_connection(sqlite3* db) : db_(db) {}
  ~sqlite_connection() override { sqlite3_close_v2(db_); }
  engine kind() const override { return engine::sqlite; }
  std::unique_ptr<statement> prepare(const char* sql) override {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK)
      return nullptr;
    return std::make_unique<sqlite_statement>(s);
  }
  bool exec(const char* sql) override {
    // On failure sqlite3_errmsg() has the message.
    return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
  }
  bool query_text(const char* sql, std::string& out) override {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &raw, nullptr) != SQLITE_OK)
      return false;
    sqlite_statement s{raw};
    auto r = s.step();
    out = r == step_result::row ? s.text(0) : std::string{};
    return r != step_result::error;
  }
  int64_t changes() const override { return sqlite3_changes64(db_); }
  bool in_transaction() const override { return !sqlite3_get_autocommit(db_); }
  std::string error() const override {
    return db_ ? sqlite3_errmsg(db_) : "out of memory";
  }
  bool healthy() override { return true; }
  void set_timeout(int ms) override { sqlite3_busy_timeout(db_, ms); }
  bool add_session_setting(const std::string&) override { return true; }
  void abandon() override {}
  sqlite3* native() const { return db_; }

private:
  sqlite3* db_;
};

}  // namespace

std::unique_ptr<connection> open_sqlite(const std::string& path, bool read_only,
                                        std::string& error) {
  sqlite3* db = nullptr;
  int flags = read_only ? SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX
                        : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    error = path + (read_only ? ": cannot open for reading: " : ": cannot open database: ")
            + (db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return nullptr;
  }
  sqlite3_busy_timeout(db, 5000);
  return std::make_unique<sqlite_connection>(db);
}

sqlite3* native_sqlite(connection& c) {
  return static_cast<sqlite_connection&>(c).native();
}

}  // namespace coapfleet::server::db

namespace coapfleet::server {

write_lock::write_lock(const std::string& path) {
  ok_ = sqlite3_open(path.c_str(), &db_) == SQLITE_OK
        && sqlite3_exec(db_, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK;
}

write_lock::~write_lock() {
  if (db_) {
    sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_close(db_);
  }
}

}  // namespace coapfleet::server
