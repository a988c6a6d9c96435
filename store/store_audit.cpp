// The store's audit log: records join the group commit through apply()
// (model::put_audit); a transaction that wrote any also drops the oldest
// rows beyond the keep limit, so a flood of refused requests cannot grow
// the table without bound. Pages are read newest first below a cursor.
#include <algorithm>
#include <limits>

#include "store/store.hpp"
#include "store/store_internal.hpp"

namespace coapfleet::server {

bool store::statements::prepare_audit() {
  return prepare(audit_insert, sql::audit_insert) && prepare(audit_prune, sql::audit_prune)
         && prepare(audit_page, sql::audit_page) && prepare(audit_count, sql::audit_count);
}

bool store::statements::write(const model::put_audit& op) {
  const auto& r = op.rec;
  bind(audit_insert, 1, r.at);
  bind_opt(audit_insert, 2, r.identity);
  bind(audit_insert, 3, std::string{model::to_string(r.r)});
  bind(audit_insert, 4, int64_t{r.secure ? 1 : 0});
  bind(audit_insert, 5, r.address);
  bind(audit_insert, 6, int64_t{r.port});
  bind(audit_insert, 7, r.action);
  bind_opt(audit_insert, 8, r.target);
  bind(audit_insert, 9, r.outcome);
  bind_opt(audit_insert, 10, r.detail);
  // The statement returns the seq the record was given.
  auto rc = audit_insert->step();
  int64_t seq = rc == db::step_result::row ? audit_insert->integer(0) : 0;
  audit_insert->reset();
  if (rc != db::step_result::row)
    return fail("cannot store audit record");
  auto stored = r;
  stored.seq = static_cast<uint64_t>(seq);
  self.audited_.push_back(std::move(stored));
  return true;
}

bool store::statements::prune_audit() {
  bind(audit_prune, 1, static_cast<int64_t>(self.audit_keep_));
  return run(audit_prune, "cannot prune the audit log");
}

void store::set_audit_keep(uint64_t rows) {
  audit_keep_ = std::clamp<uint64_t>(rows, 1, std::numeric_limits<int64_t>::max());
}

std::vector<model::audit_record> store::take_audited() {
  return std::move(audited_);
}

namespace {

model::audit_record read_record(stmt s) {
  model::audit_record r;
  r.seq = static_cast<uint64_t>(s->integer(0));
  r.at = s->integer(1);
  r.identity = column_text(s, 2);
  auto role = column_text(s, 3);
  if (role == "trusted")
    r.r = model::role::trusted;
  else if (!model::from_string(role, r.r))
    r.r = model::role::anonymous;
  r.secure = static_cast<int>(s->integer(4)) != 0;
  r.address = column_text(s, 5);
  r.port = static_cast<uint16_t>(static_cast<int>(s->integer(6)));
  r.action = column_text(s, 7);
  r.target = column_text(s, 8);
  r.outcome = column_text(s, 9);
  r.detail = column_text(s, 10);
  return r;
}

}  // namespace

bool store::audit_page(const model::audit_query& q, model::audit_page& out) {
  db_->healthy();  // a lost connection is replaced between calls, never within one
  out = {};
  auto s = st_->audit_page;
  auto limit = std::max<uint32_t>(q.limit, 1);
  bind(s, 1, q.before == 0 ? std::numeric_limits<int64_t>::max()
                           : static_cast<int64_t>(std::min<uint64_t>(
                               q.before, std::numeric_limits<int64_t>::max())));
  bind(s, 2, int64_t{limit} + 1);  // one more: is there an older page?
  db::step_result rc;
  while ((rc = s->step()) == db::step_result::row)
    out.records.push_back(read_record(s));
  s->reset();
  if (rc != db::step_result::done) {
    out = {};
    return st_->fail("cannot read the audit log");
  }
  if (out.records.size() > limit) {
    out.records.resize(limit);
    out.next = out.records.back().seq;
  }
  return true;
}

bool store::audit_count(uint64_t& out) {
  db_->healthy();  // a lost connection is replaced between calls, never within one
  auto s = st_->audit_count;
  bool ok = s->step() == db::step_result::row;
  if (ok)
    out = static_cast<uint64_t>(s->integer(0));
  s->reset();
  return ok || st_->fail("cannot count the audit log");
}

}  // namespace coapfleet::server
