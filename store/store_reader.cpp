#include "store/store_reader.hpp"

#include <limits>

#include "model/json.hpp"
#include "model/rules.hpp"
#include "store/store_internal.hpp"

namespace coapfleet::server {

namespace {

std::unique_ptr<db::connection> open_read_only(const std::string& location,
                                               std::string& error) {
  if (db::is_postgresql(location))
    return db::open_postgresql(location, true, error);
  auto c = db::open_sqlite(location, true, error);
  // Reads run through the table once: a small page cache does (at most 64
  // snapshots are open at once).
  if (c)
    c->exec("PRAGMA cache_size = -512");
  return c;
}

/// The node of the current row as a listing object, with its status as of
/// `now`; false when the query's status or health filter leaves it out.
bool encode_row(db::statement* s, const model::nodes_query& q, model::millis now,
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

std::unique_ptr<store_reader> store_reader::open(const std::string& location,
                                                 std::string& error) {
  if (location == ":memory:") {
    error = "an in-memory database has no second reader";
    return nullptr;
  }
  std::unique_ptr<store_reader> r{new store_reader};
  r->location_ = location;
  r->path_ = db::redacted(location);
  r->db_ = open_read_only(location, error);
  if (!r->db_)
    return nullptr;
  r->after_ = r->db_->prepare(sql::select_nodes_after);
  if (!r->after_) {
    error = r->path_ + ": " + r->db_->error();
    return nullptr;
  }
  return r;
}

store_reader::~store_reader() {
  after_.reset();
}

bool store_reader::page(const model::nodes_query& q, model::millis now, liveness_limits l,
                        std::string& body) {
  db_->healthy();
  // From the cursor on (the cursor itself is left out), or at the one node asked for.
  std::string from = q.after;
  if (!q.node_id.empty()) {
    if (!q.after.empty() && q.after >= q.node_id) {
      body = q.limit ? "{\"nodes\":[],\"next\":null}" : "{\"nodes\":[]}";
      return true;
    }
    from = q.node_id;
  }
  auto* s = after_.get();
  s->reset();
  // One statement for the whole page: it is of one moment. It reads no
  // more rows than the page can use: the cursor's own row, `limit` nodes
  // and one more (is there a next page?), or a filtered page's scan.
  bool filtered = !q.status.empty() || !q.health.empty();
  int64_t rows = !q.node_id.empty() ? 2
                 : q.limit == 0     ? std::numeric_limits<int64_t>::max()
                 : filtered         ? int64_t{page_scan_} + 2
                                    : int64_t{q.limit} + 2;
  s->bind_text(1, from);
  s->bind_int(2, rows);
  body = "{\"nodes\":[";
  uint32_t taken = 0;
  bool more = false;
  std::string last;
  db::step_result rc;
  // A filtered page reads at most page_scan_ rows: a filter few nodes
  // match would otherwise read (and decode) the whole table in one call. Its
  // page may then hold fewer than `limit` nodes; `next` goes on from there.
  uint32_t scanned = 0;
  while ((rc = s->step()) == db::step_result::row) {
    if (!q.node_id.empty() && column_text(s, 0) != q.node_id)
      break;
    if (!q.after.empty() && column_text(s, 0) == q.after)
      continue;
    if (filtered && q.limit != 0 && ++scanned > page_scan_) {
      more = true;
      break;
    }
    if (q.limit != 0 && taken == q.limit) {
      // Is there one more match? Only then is there a next page.
      std::string probe;
      if (encode_row(s, q, now, l, probe)) {
        more = true;
        break;
      }
      continue;
    }
    size_t at = body.size();
    if (taken > 0)
      body += ',';
    if (!encode_row(s, q, now, l, body)) {
      body.resize(at);
      if (filtered && q.limit != 0)
        last = column_text(s, 0);  // the cursor moves past what was read
      continue;
    }
    last = column_text(s, 0);
    ++taken;
  }
  bool ok = rc == db::step_result::row || rc == db::step_result::done;
  if (!ok)
    error_ = path_ + ": cannot read nodes: " + db_->error();
  s->reset();
  body += "]";
  if (q.limit != 0)
    body += more ? ",\"next\":\"" + last + "\"" : std::string(",\"next\":null");
  body += "}";
  return ok;
}

bool store_reader::nodes(const std::vector<std::string>& ids, model::millis now,
                         liveness_limits l, std::string& body) {
  db_->healthy();
  // One read transaction: the nodes as of one moment.
  bool pg = db_->kind() == db::engine::postgresql;
  bool ok = db_->exec(pg ? "BEGIN ISOLATION LEVEL REPEATABLE READ" : "BEGIN");
  auto* s = after_.get();
  body += "[";
  bool first = true;
  for (size_t i = 0; ok && i < ids.size(); ++i) {
    auto& id = ids[i];
    s->reset();
    s->bind_text(1, id);
    s->bind_int(2, 1);
    auto rc = s->step();
    if (rc == db::step_result::row && s->text(0) == id) {
      if (!first)
        body += ',';
      first = false;
      encode_row(s, {}, now, l, body);
    } else if (rc == db::step_result::error) {
      ok = false;
    }
  }
  if (!ok)
    error_ = path_ + ": cannot read nodes: " + db_->error();
  s->reset();
  if (db_->in_transaction())
    db_->exec("COMMIT");
  body += "]";
  return ok;
}

std::unique_ptr<store_reader::snapshot> store_reader::begin(const model::nodes_query& filter,
                                                             model::millis now,
                                                             liveness_limits l) {
  std::unique_ptr<snapshot> s{new snapshot};
  s->db_ = open_read_only(location_, error_);
  if (!s->db_)
    return nullptr;
  s->filter_ = filter;
  s->row_budget_ = page_scan_;
  s->now_ = now;
  s->limits_ = l;
  // BEGIN, then the first step: the read transaction (the snapshot) starts
  // there and lasts until the statement and the transaction end (one
  // statement reads one moment on PostgreSQL as well).
  if (!s->db_->exec("BEGIN") || !(s->rows_ = s->db_->prepare(sql::select_nodes_after))) {
    error_ = path_ + ": cannot begin a snapshot: " + s->db_->error();
    return nullptr;
  }
  s->rows_->bind_text(1, "");
  s->rows_->bind_int(2, std::numeric_limits<int64_t>::max());
  std::string first;
  bool done = false;
  if (!s->next(0, first, done)) {  // takes the snapshot now, not at the first chunk
    error_ = path_ + ": cannot read nodes: " + s->db_->error();
    return nullptr;
  }
  s->pending_ = std::move(first);
  return s;
}

store_reader::snapshot::~snapshot() {
  // Its own connection: dropped at once, without reading what was left.
  if (db_ && !done_)
    db_->abandon();
  rows_.reset();
  if (db_ && db_->in_transaction())
    db_->exec("COMMIT");
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
    auto rc = rows_->step();
    if (rc == db::step_result::done) {
      out += "]}";
      done_ = true;
      break;
    }
    if (rc != db::step_result::row)
      return false;
    size_t at = out.size();
    if (!first_)
      out += ',';
    if (encode_row(rows_.get(), filter_, now_, limits_, out))
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
