// Job holders: which cluster member's scheduler runs each job, and the
// claim by which a member takes its share (store::claim_jobs).
#include <algorithm>

#include "model/ownership.hpp"
#include "store/members.hpp"
#include "store/store.hpp"
#include "store/store_internal.hpp"

namespace coapfleet::server {

bool store::statements::prepare_holders() {
  std::string select = sql::select_holders;
  auto now = store_now_sql(pg());
  for (size_t at; (at = select.find("now_ms")) != std::string::npos;)
    select.replace(at, 6, now);
  return prepare(select_holders, select.c_str()) && prepare(upsert_holder, sql::upsert_holder)
         && prepare(delete_holder, sql::delete_holder)
         && prepare(take_holder_none, sql::take_holder_none)
         && prepare(take_holder_from, sql::take_holder_from);
}

bool store::statements::write(const model::put_job_holder& op) {
  bind(upsert_holder, 1, op.job_id);
  bind(upsert_holder, 2, op.member_id);
  return run(upsert_holder, "cannot record the job's holder");
}

bool store::claim_jobs(const std::string& me, const std::vector<std::string>& live,
                       const std::vector<std::string>& held, std::vector<std::string>& claimed,
                       uint32_t& waiting, std::vector<std::string>* known) {
  auto& st = *st_;
  claimed.clear();
  waiting = 0;
  fenced_ = false;
  auto contains = [](const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  return st.transaction([&] {
    struct row {
      std::string job, holder;  ///< holder "": none
      bool holder_live = false;  ///< its lease holds, read in this transaction
    };
    std::vector<row> rows;
    auto s = st.select_holders;
    db::step_result rc;
    while ((rc = s->step()) == db::step_result::row)
      rows.push_back({column_text(s, 0), s->is_null(1) ? std::string{} : column_text(s, 1),
                      s->integer(2) != 0});
    s->reset();
    if (rc != db::step_result::done)
      return st.fail("cannot read the job holders");
    if (known) {
      known->clear();
      for (auto& r : rows)
        known->push_back(r.job);
      std::sort(known->begin(), known->end());
    }
    for (auto& [job, holder, holder_live] : rows) {
      bool mine = model::owner_of(job, live) == me;
      bool here = contains(held, job);
      if (!mine) {
        if (holder == me && !here) {  // its scheduler stopped here: let go
          bind(st.delete_holder, 1, job);
          bind(st.delete_holder, 2, me);
          if (!st.run(st.delete_holder, "cannot let go of a job"))
            return false;
        }
        continue;
      }
      if (holder == me) {
        if (!here)
          claimed.push_back(job);
        continue;
      }
      if (!holder.empty() && (holder_live || contains(live, holder))) {
        ++waiting;  // its holder lets go first
        continue;
      }
      // From exactly what was read: a member that took it meanwhile keeps it.
      auto take = holder.empty() ? st.take_holder_none : st.take_holder_from;
      bind(take, 1, job);
      bind(take, 2, me);
      if (!holder.empty())
        bind(take, 3, holder);
      if (!st.run(take, "cannot claim a job"))
        return false;
      if (db_->changes() == 1)
        claimed.push_back(job);
      else
        ++waiting;
    }
    return !st.fence || check_fence();
  });
}

}  // namespace coapfleet::server
