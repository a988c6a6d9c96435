// The store's node-state history (job_history, kept by triggers on
// job_nodes; see store_sql.cpp): pages by node or job, and the trim by age.
#include <algorithm>
#include <limits>

#include "store/store.hpp"
#include "store/store_internal.hpp"

namespace coapfleet::server {

bool store::statements::prepare_history() {
  return prepare(history_by_node, sql::history_by_node)
         && prepare(history_by_job, sql::history_by_job)
         && prepare(history_trim, sql::history_trim);
}

bool store::history_page(const model::history_query& q, model::history_page& out) {
  db_->healthy();  // a lost connection is replaced between calls, never within one
  out = {};
  auto s = q.by_job ? st_->history_by_job : st_->history_by_node;
  auto limit = std::max<uint32_t>(q.limit, 1);
  bind(s, 1, q.id);
  bind(s, 2, q.before == 0 ? std::numeric_limits<int64_t>::max()
                           : static_cast<int64_t>(std::min<uint64_t>(
                               q.before, std::numeric_limits<int64_t>::max())));
  bind(s, 3, int64_t{limit} + 1);  // one more: is there an older page?
  db::step_result rc;
  while ((rc = s->step()) == db::step_result::row) {
    model::history_entry e;
    e.seq = static_cast<uint64_t>(s->integer(0));
    e.node_id = column_text(s, 1);
    e.job_id = column_text(s, 2);
    e.attempt = static_cast<uint32_t>(std::max<int64_t>(1, s->integer(3)));
    if (!model::from_string(column_text(s, 4), e.state))
      e.state = model::node_update_state::pending;
    e.result = static_cast<int>(s->integer(5));
    e.error_message = column_text(s, 6);
    e.at = s->integer(7);
    out.entries.push_back(std::move(e));
  }
  s->reset();
  if (rc != db::step_result::done) {
    out = {};
    return st_->fail("cannot read the history");
  }
  if (out.entries.size() > limit) {
    out.entries.resize(limit);
    out.next = out.entries.back().seq;
  }
  return true;
}

bool store::trim_history(model::millis before, uint64_t& dropped) {
  db_->healthy();  // a lost connection is replaced between calls, never within one
  auto s = st_->history_trim;
  bind(s, 1, before);
  bool ok = st_->run(s, "cannot trim the history");
  dropped = ok ? static_cast<uint64_t>(db_->changes()) : 0;
  return ok;
}

}  // namespace coapfleet::server
