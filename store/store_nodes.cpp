// The store's nodes: a row as a node record, and the loads of nodes (all,
// one, the registry's briefs at start-up). See store.cpp for the rest.
#include <algorithm>

#include "model/json.hpp"
#include "store/store.hpp"
#include "store/store_internal.hpp"

namespace coapfleet::server {

std::string decode_node_row(stmt s, model::node_record& n) {
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
  n.reg.port = static_cast<uint16_t>(static_cast<int>(s->integer(3)));
  take(model::decode_strings(column_text(s, 4)), n.reg.services, "services");
  take(model::decode_strings(column_text(s, 5)), n.reg.drivers, "drivers");
  take(model::decode_attributes(column_text(s, 6)), n.reg.system_info, "system_info");
  n.reg.reported_status = column_text(s, 7);
  n.registered_at = s->integer(8);
  n.last_seen = s->integer(9);
  n.reg.reported_ip_address = column_text(s, 12);
  if (!s->is_null(13))
    take(model::decode_string_map(column_text(s, 13)), n.reg.labels, "labels");
  if (!s->is_null(14))
    take(model::decode_string_map(column_text(s, 14)), n.reg.inventory, "inventory");
  if (!s->is_null(10)
      && take(model::decode_health_report(column_text(s, 10), model::json_source::store),
              n.health, "health")) {
    n.has_health = true;
    n.health.node_id = n.reg.node_id;
    n.health_at = s->integer(11);
  }
  return error;
}

std::vector<model::node_record> store::load_nodes() {
  db_->healthy();  // a lost connection is replaced between calls, never within one
  std::vector<model::node_record> out;
  auto s = st_->select_nodes;
  db::step_result rc;
  while ((rc = s->step()) == db::step_result::row) {
    model::node_record n;
    auto bad = decode_node_row(s, n);
    if (!bad.empty())
      error_ = path_ + ": " + bad;
    out.push_back(std::move(n));
  }
  if (rc != db::step_result::done)
    st_->fail("cannot load nodes");
  s->reset();
  return out;
}

std::optional<model::node_record> store::load_node(const std::string& id) {
  db_->healthy();  // a lost connection is replaced between calls, never within one
  auto s = st_->select_node;
  s->bind_text(1, id);
  std::optional<model::node_record> out;
  db::step_result rc = s->step();
  if (rc == db::step_result::row) {
    out.emplace();
    auto bad = decode_node_row(s, *out);
    if (!bad.empty())
      error_ = path_ + ": " + bad;
  } else if (rc != db::step_result::done) {
    st_->fail("cannot load node " + id);
  }
  s->reset();
  return out;
}

std::vector<model::node_brief> store::load_briefs() {
  db_->healthy();  // a lost connection is replaced between calls, never within one
  std::vector<model::node_brief> out;
  auto s = st_->select_briefs;
  db::step_result rc;
  while ((rc = s->step()) == db::step_result::row) {
    model::node_brief b;
    b.node_id = column_text(s, 0);
    b.ip_address = column_text(s, 1);
    b.port = static_cast<uint16_t>(static_cast<int>(s->integer(2)));
    b.registered_at = s->integer(3);
    b.last_seen = s->integer(4);
    if (!s->is_null(5)) {
      b.has_health = true;
      b.last_seen = std::max<model::millis>(b.last_seen, s->integer(5));
      b.healthy = static_cast<int>(s->integer(6)) != 0;
      if (!b.healthy && !s->is_null(7)) {
        auto errors = model::decode_strings(column_text(s, 7));
        if (errors.ok())
          b.error_messages = std::move(errors.value);
      }
    }
    for (int c : {8, 9, 10})
      if (!s->is_null(c)) {
        auto m = model::decode_string_map(column_text(s, c));
        if (m.ok())
          (c == 8 ? b.traits.labels : c == 9 ? b.traits.inventory : b.traits.operator_labels) =
            std::move(m.value);
      }
    b.traits.arch = column_text(s, 11);
    b.traits.os = column_text(s, 12);
    out.push_back(std::move(b));
  }
  if (rc != db::step_result::done)
    st_->fail("cannot load nodes");
  s->reset();
  return out;
}

}  // namespace coapfleet::server
