// The PostgreSQL driver of store/db.hpp (libpq). Statements are prepared
// on their first run with the types of their bindings (64-bit integers and
// text), read a row at a time (single-row mode: a listing of a million
// nodes is never one result in memory), and every wait on the server has a
// deadline: a store that stops answering fails the call instead of hanging
// the persistence actor, and the connection is opened again on next use.
#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

#include "store/db.hpp"

namespace coapfleet::server::db {

namespace {

constexpr Oid int8_oid = 20;
constexpr Oid text_oid = 25;
constexpr Oid bytea_oid = 17;

/// SQLite's ?N parameters as PostgreSQL's $N; `count` is the largest N.
std::string to_dollar(const char* sql, int& count) {
  std::string out;
  count = 0;
  char quote = 0;
  for (const char* p = sql; *p; ++p) {
    char c = *p;
    if (quote) {
      if (c == quote)
        quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '?' && p[1] >= '0' && p[1] <= '9') {
      c = '$';
      count = std::max(count, std::atoi(p + 1));
    }
    out += c;
  }
  return out;
}

std::string trimmed(const char* msg) {
  std::string s = msg ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  return s.empty() ? "unknown error" : s;
}

void quiet(void*, const char*) {}  // notices ("already exists, skipping") are not errors

class pg_statement;

class pg_connection final : public connection {
public:
  pg_connection(std::string uri, bool read_only) : uri_(std::move(uri)), read_only_(read_only) {}
  ~pg_connection() override { close(); }

  bool connect() {
    close();
    // As long as a call may wait (libpq's least is 2 s); the URI's own
    // connect_timeout, if any, overrides this.
    auto seconds = std::to_string(std::max<int64_t>(2, (timeout_.count() + 999) / 1000));
    const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
    const char* values[] = {seconds.c_str(), "coapfleet", uri_.c_str(), nullptr};
    conn_ = PQconnectdbParams(keys, values, 1);
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
      error_ = "cannot connect to " + redacted(uri_) + ": "
               + (conn_ ? trimmed(PQerrorMessage(conn_)) : "out of memory");
      close();
      return false;
    }
    PQsetNoticeProcessor(conn_, quiet, nullptr);
    broken_ = false;
    ++generation_;
    std::string setup = "SET client_min_messages = warning; SET client_encoding = 'UTF8'";
    if (read_only_)
      setup += "; SET default_transaction_read_only = on";
    for (auto& extra : session_settings_)
      setup += "; " + extra;
    if (!exec(setup.c_str())) {
      close();
      return false;
    }
    return true;
  }

  engine kind() const override { return engine::postgresql; }
  std::unique_ptr<statement> prepare(const char* sql) override;
  bool exec(const char* sql) override {
    if (broken()) {
      error_ = "the connection to the store was lost";
      return false;
    }
    if (!PQsendQuery(conn_, sql))
      return lost("cannot send");
    bool ok = true;
    bool commit = std::strcmp(sql, "COMMIT") == 0;
    while (PGresult* r = next_result()) {
      auto st = PQresultStatus(r);
      if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && ok) {
        error_ = trimmed(PQresultErrorMessage(r));
        ok = false;
      } else if (commit && ok && std::strcmp(PQcmdStatus(r), "ROLLBACK") == 0) {
        error_ = "the transaction was rolled back";
        ok = false;
      }
      PQclear(r);
    }
    return ok && !broken_;
  }
  bool query_text(const char* sql, std::string& out) override {
    out.clear();
    if (broken()) {
      error_ = "the connection to the store was lost";
      return false;
    }
    if (!PQsendQuery(conn_, sql))
      return lost("cannot send");
    bool ok = true, first = true;
    while (PGresult* r = next_result()) {
      auto st = PQresultStatus(r);
      if (st == PGRES_TUPLES_OK && first && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
        out = PQgetvalue(r, 0, 0);
      else if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && ok) {
        error_ = trimmed(PQresultErrorMessage(r));
        ok = false;
      }
      first = false;
      PQclear(r);
    }
    return ok && !broken_;
  }
  int64_t changes() const override { return changes_; }
  bool in_transaction() const override {
    if (!conn_)
      return false;
    auto t = PQtransactionStatus(conn_);
    return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
  }
  std::string error() const override { return error_; }
  bool healthy() override {
    if (conn_ && !broken_ && PQstatus(conn_) == CONNECTION_OK)
      return true;
    return connect();
  }

  // -- for the statements ----------------------------------------------------------

  PGconn* raw() const { return conn_; }
  uint64_t generation() const { return generation_; }
  void set_changes(int64_t n) { changes_ = n; }
  void set_error(std::string e) { error_ = std::move(e); }
  std::string next_name() { return "cf" + std::to_string(++names_); }

  /// The next result of the running command, waiting at most the
  /// deadline; null at its end, or when the server did not answer in time
  /// (the connection is then dropped: error() says so).
  PGresult* next_result() {
    if (!conn_ || broken_)
      return nullptr;
    auto deadline = std::chrono::steady_clock::now() + timeout_;
    while (PQisBusy(conn_)) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
      if (left <= 0) {
        lost("no answer within " + std::to_string(timeout_.count()) + " ms");
        return nullptr;
      }
      pollfd p{PQsocket(conn_), POLLIN, 0};
      int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
      if (n < 0 && errno != EINTR) {
        lost("poll failed");
        return nullptr;
      }
      if (n > 0 && !PQconsumeInput(conn_)) {
        lost("connection lost");
        return nullptr;
      }
    }
    return PQgetResult(conn_);
  }

  /// Marks the connection lost (it reconnects on next use) and closes it at
  /// once: the server ends a transaction it left open (and the locks it
  /// holds) now, not at this session's next call. Always false.
  bool lost(const std::string& why) {
    error_ = redacted(uri_) + ": " + why
             + (conn_ ? ": " + trimmed(PQerrorMessage(conn_)) : std::string{});
    broken_ = true;
    close();
    return false;
  }

  void set_timeout(int ms) override { timeout_ = std::chrono::milliseconds{std::max(ms, 1)}; }
  bool add_session_setting(const std::string& sql) override {
    session_settings_.push_back(sql);
    return broken() || exec(sql.c_str());
  }
  void abandon() override { close(); }
  bool broken() const { return broken_ || !conn_; }

private:
  void close() {
    if (conn_)
      PQfinish(conn_);
    conn_ = nullptr;
  }

  std::string uri_;
  bool read_only_;
  PGconn* conn_ = nullptr;
  bool broken_ = false;
  uint64_t generation_ = 0;
  uint64_t names_ = 0;
  int64_t changes_ = 0;
  std::string error_;
  std::chrono::milliseconds timeout_{10000};
  std::vector<std::string> session_settings_;  ///< SET ... again on every connection
};

class pg_statement final : public statement {
public:
  pg_statement(pg_connection& c, const char* sql) : c_(c) {
    text_ = to_dollar(sql, count_);
    values_.resize(static_cast<size_t>(count_));
    null_.assign(static_cast<size_t>(count_), true);
    types_.assign(static_cast<size_t>(count_), 0);
    binary_.assign(static_cast<size_t>(count_), 0);
  }
  ~pg_statement() override { finish(); }

  void bind_text(int i, std::string_view v) override {
    if (auto k = slot(i)) {
      values_[*k - 1].assign(v.data(), v.size());
      null_[*k - 1] = false;
      types_[*k - 1] = text_oid;
      binary_[*k - 1] = 0;
    }
  }
  // Sent in binary format: no escaping, and NUL is a byte like any other.
  void bind_blob(int i, std::string_view v) override {
    if (auto k = slot(i)) {
      values_[*k - 1].assign(v.data(), v.size());
      null_[*k - 1] = false;
      types_[*k - 1] = bytea_oid;
      binary_[*k - 1] = 1;
    }
  }
  void bind_int(int i, int64_t v) override {
    if (auto k = slot(i)) {
      values_[*k - 1] = std::to_string(v);
      null_[*k - 1] = false;
      types_[*k - 1] = int8_oid;
      binary_[*k - 1] = 0;
    }
  }
  void bind_null(int i) override {
    if (auto k = slot(i))
      null_[*k - 1] = true;
  }

  step_result step() override {
    if (done_)
      return step_result::done;
    if (!running_ && !start())
      return fail();
    clear_row();
    PGresult* r = c_.next_result();
    if (!r) {  // the end of the run, or the connection was lost
      running_ = false;
      if (c_.broken())
        return fail();
      done_ = true;
      return step_result::done;
    }
    auto st = PQresultStatus(r);
    if (st == PGRES_SINGLE_TUPLE) {
      row_ = r;
      return step_result::row;
    }
    if (st == PGRES_COMMAND_OK && text_ == "COMMIT"
        && std::strcmp(PQcmdStatus(r), "ROLLBACK") == 0) {
      // COMMIT of a failed transaction: PostgreSQL rolled it back.
      c_.set_error("the transaction was rolled back");
      PQclear(r);
      finish();
      return fail();
    }
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
      const char* n = PQcmdTuples(r);
      c_.set_changes(n && *n ? std::atoll(n) : 0);
      PQclear(r);
      finish();
      done_ = true;
      return step_result::done;
    }
    c_.set_error(trimmed(PQresultErrorMessage(r)));
    PQclear(r);
    finish();
    return fail();
  }
  bool is_null(int col) const override { return !row_ || PQgetisnull(row_, 0, col); }
  std::string text(int col) const override {
    if (is_null(col))
      return {};
    return {PQgetvalue(row_, 0, col), static_cast<size_t>(PQgetlength(row_, 0, col))};
  }
  // Results come in text format: BYTEA as its escaped (hex) text.
  std::string blob(int col) const override {
    if (is_null(col))
      return {};
    size_t n = 0;
    unsigned char* raw =
      PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(row_, 0, col)), &n);
    if (!raw)
      return {};
    std::string out(reinterpret_cast<const char*>(raw), n);
    PQfreemem(raw);
    return out;
  }
  int64_t integer(int col) const override {
    return is_null(col) ? 0 : std::atoll(PQgetvalue(row_, 0, col));
  }
  void reset() override {
    finish();
    done_ = false;
    null_.assign(null_.size(), true);
  }

private:
  std::optional<size_t> slot(int i) const {
    if (i < 1 || i > count_)
      return std::nullopt;
    return static_cast<size_t>(i);
  }

  step_result fail() {
    running_ = false;
    done_ = true;
    return step_result::error;
  }

  /// Runs the statement on the connection as it is: a lost connection is
  /// never replaced here (a transaction must not go on, statement by
  /// statement, on a new session); connection::healthy() does that, before
  /// a transaction.
  bool start() {
    if (c_.broken()) {
      c_.set_error("the connection to the store was lost");
      return false;
    }
    for (size_t k = 0; k < values_.size(); ++k)
      if (!null_[k] && !binary_[k] && values_[k].find('\0') != std::string::npos) {
        c_.set_error("text with a NUL byte cannot be stored");
        return false;
      }
    PGconn* conn = c_.raw();
    if (prepared_for_ != c_.generation()) {
      name_ = c_.next_name();
      if (!PQsendPrepare(conn, name_.c_str(), text_.c_str(), count_, types_.data()))
        return c_.lost("cannot send");
      bool prepared = false, failed = false;
      while (PGresult* r = c_.next_result()) {
        if (PQresultStatus(r) == PGRES_COMMAND_OK) {
          prepared = true;
        } else if (!failed) {
          c_.set_error("cannot prepare '" + text_ + "': " + trimmed(PQresultErrorMessage(r)));
          failed = true;
        }
        PQclear(r);
      }
      if (!prepared || failed || c_.broken())
        return false;
      prepared_for_ = c_.generation();
    }
    std::vector<const char*> params(static_cast<size_t>(count_));
    std::vector<int> lengths(static_cast<size_t>(count_));
    for (size_t k = 0; k < params.size(); ++k) {
      params[k] = null_[k] ? nullptr : values_[k].c_str();
      lengths[k] = static_cast<int>(values_[k].size());
    }
    if (!PQsendQueryPrepared(conn, name_.c_str(), count_, params.data(), lengths.data(),
                             binary_.data(), 0))
      return c_.lost("cannot send");
    PQsetSingleRowMode(conn);
    c_.set_error({});
    running_ = true;
    return true;
  }

  void clear_row() {
    if (row_)
      PQclear(row_);
    row_ = nullptr;
  }

  /// Reads what is left of the run (the connection takes no other command
  /// before that).
  void finish() {
    clear_row();
    if (running_)
      while (PGresult* r = c_.next_result())
        PQclear(r);
    running_ = false;
  }

  pg_connection& c_;
  std::string text_, name_;
  int count_ = 0;
  std::vector<std::string> values_;
  std::vector<bool> null_;
  std::vector<Oid> types_;
  std::vector<int> binary_;  ///< per parameter: 1 for bytes sent as they are
  uint64_t prepared_for_ = 0;
  PGresult* row_ = nullptr;
  bool running_ = false, done_ = false;
};

std::unique_ptr<statement> pg_connection::prepare(const char* sql) {
  return std::make_unique<pg_statement>(*this, sql);
}

}  // namespace

bool is_postgresql(std::string_view location) {
  return location.rfind("postgresql://", 0) == 0 || location.rfind("postgres://", 0) == 0;
}

std::string redacted(std::string_view location) {
  std::string s{location};
  if (!is_postgresql(s))
    return s;
  auto scheme = s.find("://") + 3;
  auto at = s.find('@', scheme);
  auto colon = s.find(':', scheme);
  if (at != std::string::npos && colon != std::string::npos && colon < at)
    s.replace(colon + 1, at - colon - 1, "***");
  for (size_t p = s.find("password="); p != std::string::npos; p = s.find("password=", p + 1)) {
    auto end = s.find('&', p);
    s.replace(p + 9, (end == std::string::npos ? s.size() : end) - p - 9, "***");
  }
  return s;
}

std::unique_ptr<connection> open_postgresql(const std::string& uri, bool read_only,
                                            std::string& error) {
  auto c = std::make_unique<pg_connection>(uri, read_only);
  if (!c->connect()) {
    error = c->error();
    return nullptr;
  }
  return c;
}

}  // namespace coapfleet::server::db
