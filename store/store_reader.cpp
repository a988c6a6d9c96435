#include "store/store_reader.hpp"

#include <sqlite3.h>

#include "model/json.hpp"
#include "model/rules.hpp"
#include "store/store_internal.hpp"

namespace coapfleet::server {

namespace {

sqlite3* open_read_only(const std::string& path, std::string& error) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr)
      != SQLITE_OK) {
    error = path + ": cannot open for reading: " + (db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return nullptr;
  }
  sqlite3_busy_timeout(db, 5000);
  // Reads run through the table once: a small page cache does (at most 64
  // snapshots are open at once).
  sqlite3_exec(db, "PRAGMA cache_size = -512", nullptr, nullptr, nullptr);
  return db;
}

/// The node of the current row as a listing object, with its status as of
/// `now`; false when the query's status or health filter leaves it out.
bool encode_row(sqlite3_stmt* s, const model::nodes_query& q, model::millis now,
                liveness_limits l, std::string& out) {
  model::node_record n;
  decode_node_row(s, n);  // a column it cannot decode is left out, as at start-up
  n.status = model::liveness(n.last_seen, now, l.stale_after, l.offline_after);
  if (!q.status.empty() && q.status != model::to_string(n.status))
    return false;
  if (!q.health.empty()
      && (!n.has_health || n.health.overall_healthy != (q.health == "healthy")))
    return false;
  out += model::encode_node(n);
  return true;
}

}  // namespace

std::unique_ptr<store_reader> store_reader::open(const std::string& path, std::string& error) {
  if (path == ":memory:") {
    error = "an in-memory database has no second reader";
    return nullptr;
  }
  std::unique_ptr<store_reader> r{new store_reader};
  r->path_ = path;
  r->db_ = open_read_only(path, error);
  if (!r->db_)
    return nullptr;
  if (sqlite3_prepare_v3(r->db_, sql::select_nodes_after, -1, SQLITE_PREPARE_PERSISTENT,
                         &r->after_, nullptr)
      != SQLITE_OK) {
    error = path + ": " + sqlite3_errmsg(r->db_);
    return nullptr;
  }
  return r;
}

store_reader::~store_reader() {
  sqlite3_finalize(after_);
  sqlite3_close(db_);
}

bool store_reader::page(const model::nodes_query& q, model::millis now, liveness_limits l,
                        std::string& body) {
  // From the cursor on (the cursor itself is left out), or at the one node asked for.
  std::string from = q.after;
  if (!q.node_id.empty()) {
    if (!q.after.empty() && q.after >= q.node_id) {
      body = q.limit ? "{\"nodes\":[],\"next\":null}" : "{\"nodes\":[]}";
      return true;
    }
    from = q.node_id;
  }
  sqlite3_reset(after_);
  // One read transaction for the whole page: it is of one moment.
  // (Not bind(): with a std::string argument, ADL makes that std::bind.)
  sqlite3_bind_text(after_, 1, from.data(), static_cast<int>(from.size()), SQLITE_TRANSIENT);
  body = "{\"nodes\":[";
  uint32_t taken = 0;
  bool more = false;
  std::string last;
  int rc;
  // A filtered page reads at most page_scan_ rows: a filter few nodes
  // match would otherwise read (and decode) the whole table in one call. Its
  // page may then hold fewer than `limit` nodes; `next` goes on from there.
  bool filtered = !q.status.empty() || !q.health.empty();
  uint32_t scanned = 0;
  while ((rc = sqlite3_step(after_)) == SQLITE_ROW) {
    if (!q.node_id.empty() && column_text(after_, 0) != q.node_id)
      break;
    if (!q.after.empty() && column_text(after_, 0) == q.after)
      continue;
    if (filtered && q.limit != 0 && ++scanned > page_scan_) {
      more = true;
      break;
    }
    if (q.limit != 0 && taken == q.limit) {
      // Is there one more match? Only then is there a next page.
      std::string probe;
      if (encode_row(after_, q, now, l, probe)) {
        more = true;
        break;
      }
      continue;
    }
    size_t at = body.size();
    if (taken > 0)
      body += ',';
    if (!encode_row(after_, q, now, l, body)) {
      body.resize(at);
      if (filtered && q.limit != 0)
        last = column_text(after_, 0);  // the cursor moves past what was read
      continue;
    }
    last = column_text(after_, 0);
    ++taken;
  }
  bool ok = rc == SQLITE_ROW || rc == SQLITE_DONE;
  if (!ok)
    error_ = path_ + ": cannot read nodes: " + sqlite3_errmsg(db_);
  sqlite3_reset(after_);
  body += "]";
  if (q.limit != 0)
    body += more ? ",\"next\":\"" + last + "\"" : std::string(",\"next\":null");
  body += "}";
  return ok;
}

bool store_reader::nodes(const std::vector<std::string>& ids, model::millis now,
                         liveness_limits l, std::string& body) {
  // One read transaction: the nodes as of one moment.
  bool ok = sqlite3_exec(db_, "BEGIN", nullptr, nullptr, nullptr) == SQLITE_OK;
  body += "[";
  bool first = true;
  for (size_t i = 0; ok && i < ids.size(); ++i) {
    auto& id = ids[i];
    sqlite3_reset(after_);
    sqlite3_bind_text(after_, 1, id.data(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
    int rc = sqlite3_step(after_);
    if (rc == SQLITE_ROW && column_text(after_, 0) == id) {
      if (!first)
        body += ',';
      first = false;
      encode_row(after_, {}, now, l, body);
    } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      ok = false;
    }
  }
  if (!ok)
    error_ = path_ + ": cannot read nodes: " + sqlite3_errmsg(db_);
  sqlite3_reset(after_);
  sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
  body += "]";
  return ok;
}

std::unique_ptr<store_reader::snapshot> store_reader::begin(const model::nodes_query& filter,
                                                             model::millis now,
                                                             liveness_limits l) {
  std::unique_ptr<snapshot> s{new snapshot};
  s->db_ = open_read_only(path_, error_);
  if (!s->db_)
    return nullptr;
  s->filter_ = filter;
  s->row_budget_ = page_scan_;
  s->now_ = now;
  s->limits_ = l;
  // BEGIN, then the first step: the read transaction (the snapshot) starts
  // there and lasts until the statement and the transaction end.
  if (sqlite3_exec(s->db_, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK
      || sqlite3_prepare_v2(s->db_, sql::select_nodes_after, -1, &s->rows_, nullptr)
           != SQLITE_OK) {
    error_ = path_ + ": cannot begin a snapshot: " + sqlite3_errmsg(s->db_);
    return nullptr;
  }
  sqlite3_bind_text(s->rows_, 1, "", 0, SQLITE_STATIC);
  std::string first;
  bool done = false;
  if (!s->next(0, first, done)) {  // takes the snapshot now, not at the first chunk
    error_ = path_ + ": cannot read nodes: " + sqlite3_errmsg(s->db_);
    return nullptr;
  }
  s->pending_ = std::move(first);
  return s;
}

store_reader::snapshot::~snapshot() {
  sqlite3_finalize(rows_);
  if (db_)
    sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(db_);
}

bool store_reader::snapshot::next(size_t bytes, std::string& out, bool& done) {
  if (!pending_.empty()) {
    out += pending_;
    pending_.clear();
  }
  if (!started_) {
    started_ = true;
    out += "{\"nodes\":[";
  }
  size_t start = out.size();
  uint32_t rows = 0;
  while (!done_ && (out.size() - start < bytes || out.size() == start)) {
    if (bytes != 0 && ++rows > row_budget_)
      break;  // the rest in the next call
    int rc = sqlite3_step(rows_);
    if (rc == SQLITE_DONE) {
      out += "]}";
      done_ = true;
      break;
    }
    if (rc != SQLITE_ROW)
      return false;
    size_t at = out.size();
    if (!first_)
      out += ',';
    if (encode_row(rows_, filter_, now_, limits_, out))
      first_ = false;
    else
      out.resize(at);
    if (bytes == 0)
      break;  // begin(): one row read, the snapshot is taken
  }
  done = done_;
  return true;
}

}  // namespace coapfleet::server
