// The store's nodes: a row as a node record, and the loads of nodes (all,
// one, the registry's briefs at start-up). See store.cpp for the rest.
#include <sqlite3.h>

#include <algorithm>

#include "model/json.hpp"
#include "store/store.hpp"
#include "store/store_internal.hpp"

namespace coapfleet::server {

std::string decode_node_row(sqlite3_stmt* s, model::node_record& n) {
  std::string error;
  auto take = [&](auto&& d, auto& into, const char* column) {
    if (!d.ok()) {
      if (error.empty())
        error = std::string("cannot decode ") + column + " of " + n.reg.node_id + ": " + d.err.error;
      return false;
    }
    into = std::move(d.value);
    return true;
  };
  n.reg.node_id = column_text(s, 0);
  n.reg.hostname = column_text(s, 1);
  n.reg.ip_address = column_text(s, 2);
  n.reg.port = static_cast<uint16_t>(sqlite3_column_int(s, 3));
  take(model::decode_strings(column_text(s, 4)), n.reg.services, "services");
  take(model::decode_strings(column_text(s, 5)), n.reg.drivers, "drivers");
  take(model::decode_attributes(column_text(s, 6)), n.reg.system_info, "system_info");
  n.reg.reported_status = column_text(s, 7);
  n.registered_at = sqlite3_column_int64(s, 8);
  n.last_seen = sqlite3_column_int64(s, 9);
  n.reg.reported_ip_address = column_text(s, 12);
  if (sqlite3_column_type(s, 13) != SQLITE_NULL)
    take(model::decode_string_map(column_text(s, 13)), n.reg.labels, "labels");
  if (sqlite3_column_type(s, 14) != SQLITE_NULL)
    take(model::decode_string_map(column_text(s, 14)), n.reg.inventory, "inventory");
  if (sqlite3_column_type(s, 10) != SQLITE_NULL
      && take(model::decode_health_report(column_text(s, 10), model::json_source::store),
              n.health, "health")) {
    n.has_health = true;
    n.health.node_id = n.reg.node_id;
    n.health_at = sqlite3_column_int64(s, 11);
  }
  return error;
}

std::vector<model::node_record> store::load_nodes() {
  std::vector<model::node_record> out;
  auto s = st_->select_nodes;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    model::node_record n;
    auto bad = decode_node_row(s, n);
    if (!bad.empty())
      error_ = path_ + ": " + bad;
    out.push_back(std::move(n));
  }
  if (rc != SQLITE_DONE)
    st_->fail("cannot load nodes");
  sqlite3_reset(s);
  return out;
}

std::optional<model::node_record> store::load_node(const std::string& id) {
  auto s = st_->select_node;
  sqlite3_bind_text(s, 1, id.data(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
  std::optional<model::node_record> out;
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    out.emplace();
    auto bad = decode_node_row(s, *out);
    if (!bad.empty())
      error_ = path_ + ": " + bad;
  } else if (rc != SQLITE_DONE) {
    st_->fail("cannot load node " + id);
  }
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return out;
}

std::vector<model::node_brief> store::load_briefs() {
  std::vector<model::node_brief> out;
  auto s = st_->select_briefs;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    model::node_brief b;
    b.node_id = column_text(s, 0);
    b.ip_address = column_text(s, 1);
    b.port = static_cast<uint16_t>(sqlite3_column_int(s, 2));
    b.registered_at = sqlite3_column_int64(s, 3);
    b.last_seen = sqlite3_column_int64(s, 4);
    if (sqlite3_column_type(s, 5) != SQLITE_NULL) {
      b.has_health = true;
      b.last_seen = std::max<model::millis>(b.last_seen, sqlite3_column_int64(s, 5));
      b.healthy = sqlite3_column_int(s, 6) != 0;
      if (!b.healthy && sqlite3_column_type(s, 7) != SQLITE_NULL) {
        auto errors = model::decode_strings(column_text(s, 7));
        if (errors.ok())
          b.error_messages = std::move(errors.value);
      }
    }
    for (int c : {8, 9, 10})
      if (sqlite3_column_type(s, c) != SQLITE_NULL) {
        auto m = model::decode_string_map(column_text(s, c));
        if (m.ok())
          (c == 8 ? b.traits.labels : c == 9 ? b.traits.inventory : b.traits.operator_labels) =
            std::move(m.value);
      }
    b.traits.arch = column_text(s, 11);
    b.traits.os = column_text(s, 12);
    out.push_back(std::move(b));
  }
  if (rc != SQLITE_DONE)
    st_->fail("cannot load nodes");
  sqlite3_reset(s);
  return out;
}

}  // namespace coapfleet::server
