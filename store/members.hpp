// The cluster's members in the shared store, on a connection of their own
// (the membership actor's): each member's row is its lease. A member joins
// with a new epoch (its fencing token), renews its heartbeat while its lease
// is still valid, and is live while the heartbeat is younger than its
// lease_ms, all by the store's clock (members' clocks may differ). A member
// whose lease lapsed cannot renew it: it must join again, with a new epoch,
// and the store refuses the writes of its old epoch (store::set_fence).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/types.hpp"

namespace coapfleet::server {

namespace db {
class connection;
class statement;
}  // namespace db

struct member_row {
  std::string member_id;
  std::string cluster_endpoint;  ///< HOST:PORT of its CAF middleman
  std::string coap_endpoint;     ///< HOST:PORT of its CoAP socket
  uint64_t epoch = 0;
  int64_t lease_ms = 0;
  model::millis started_at = 0;
  model::millis heartbeat_at = 0;
  int64_t heartbeat_age_ms = 0;  ///< as the store saw it when listed
  bool live = false;             ///< heartbeat_age_ms < lease_ms
  uint32_t nodes = 0;            ///< nodes it serves (their agents talk to it), at its heartbeat
  uint32_t jobs = 0;             ///< jobs it runs, at its heartbeat
};

class member_table {
public:
  /// Opens the store at `location` on a connection of its own (the schema
  /// must exist: store::open made it). Null with `error` set on failure.
  static std::unique_ptr<member_table> open(const std::string& location, std::string& error);
  ~member_table();
  member_table(const member_table&) = delete;
  member_table& operator=(const member_table&) = delete;

  /// Joins (or joins again): a new epoch, heartbeat now. Fills me.epoch,
  /// started_at and heartbeat_at.
  bool join(member_row& me);

  enum class renewal : uint8_t {
    renewed,
    fenced,  ///< the lease lapsed or another join took the row: join again
    failed,  ///< the store did not answer (last_error())
  };
  renewal renew(const std::string& member_id, uint64_t epoch, uint32_t nodes = 0,
                uint32_t jobs = 0);

  /// Every member, live or not, by id.
  bool list(std::vector<member_row>& out);

  /// Ends the lease now (a clean stop): the others take over at once.
  bool leave(const std::string& member_id, uint64_t epoch);

  /// How long a call waits for the store.
  void set_timeout(int ms);
  const std::string& last_error() const { return error_; }

private:
  member_table() = default;
  bool fail(const std::string& what);
  std::unique_ptr<db::connection> db_;
  std::unique_ptr<db::statement> bump_, upsert_, renew_, list_, leave_;
  std::string path_, error_;
};

/// The SQL expression of the store's clock in ms since the epoch, for an
/// engine ("now_ms" in the statements of members.cpp and the fence check).
std::string store_now_sql(bool postgresql);

}  // namespace coapfleet::server
