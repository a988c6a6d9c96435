// Reads of the fleet's listing straight from the database, on connections of
// their own (SQLite's WAL and PostgreSQL's MVCC: readers never wait for the
// writer, nor it for them), so that
// GET /nodes never needs the fleet in memory: a page of the listing in node id
// order from a cursor, or the whole listing block by block from one snapshot
// (a read transaction held while it is read). The persistence actor stays the
// only writer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/queries.hpp"
#include "model/types.hpp"

namespace coapfleet::server {

namespace db {
class connection;
class statement;
}  // namespace db

/// How old a last_seen makes a node stale or offline (model::liveness).
struct liveness_limits {
  model::millis stale_after = 60000;
  model::millis offline_after = 180000;
};

class store_reader {
public:
  /// Opens the store at `location` (a SQLite file or a postgresql:// URI)
  /// read-only. Null with `error` set when it cannot.
  static std::unique_ptr<store_reader> open(const std::string& location, std::string& error);
  ~store_reader();
  store_reader(const store_reader&) = delete;
  store_reader& operator=(const store_reader&) = delete;

  /// GET /nodes?limit=&after=&status=&health=&node_id= as its body:
  /// {"nodes":[...],"next":ID|null}, each node as encode_node has it, its
  /// status as of `now`. When q.limit is 0 (a filter without paging) every
  /// match is in it and there is no "next". A filtered page reads at most
  /// page_scan() rows, so it may hold fewer than `limit` nodes with a `next`.
  /// False on a database error. A whole listing's next() reads at most
  /// page_scan() rows per call, too.
  bool page(const model::nodes_query& q, model::millis now, liveness_limits l, std::string& body);
  static constexpr uint32_t default_page_scan = 50'000;
  uint32_t page_scan() const { return page_scan_; }
  void set_page_scan(uint32_t rows) { page_scan_ = rows; }

  /// The nodes `ids` (those that exist, in that order) as a JSON array of
  /// listing objects appended to `body`, read in one transaction. False
  /// on a database error.
  bool nodes(const std::vector<std::string>& ids, model::millis now, liveness_limits l,
             std::string& body);

  /// The whole listing ({"nodes":[...]}, status filter optional) of one
  /// moment, produced a chunk at a time.
  class snapshot {
  public:
    ~snapshot();
    snapshot(const snapshot&) = delete;
    snapshot& operator=(const snapshot&) = delete;
    /// Appends at least `bytes` more of the body to `out` (less at its end,
    /// and less, maybe nothing, once it has read its row budget: a filter
    /// few nodes match reads on in the next call); `done` once the body is
    /// complete. False on a database error.
    bool next(size_t bytes, std::string& out, bool& done);

  private:
    friend class store_reader;
    snapshot() = default;
    std::unique_ptr<db::connection> db_;
    std::unique_ptr<db::statement> rows_;
    model::nodes_query filter_;  ///< its status and health
    uint32_t row_budget_ = 0;    ///< rows one next() reads at most
    model::millis now_ = 0;
    liveness_limits limits_;
    std::string pending_;  ///< read by begin(), handed out by the first next()
    bool started_ = false, first_ = true, done_ = false;
  };
  /// A snapshot as of now (its own connection and read transaction: writes
  /// committed later are not in it). Null with last_error() on failure.
  std::unique_ptr<snapshot> begin(const model::nodes_query& filter, model::millis now,
                                  liveness_limits l);

  const std::string& last_error() const { return error_; }

private:
  store_reader() = default;
  uint32_t page_scan_ = default_page_scan;
  std::string location_;  ///< as given (a URI with its password)
  std::string path_;      ///< as shown
  std::string error_;
  std::unique_ptr<db::connection> db_;
  std::unique_ptr<db::statement> after_;
};

}  // namespace coapfleet::server
