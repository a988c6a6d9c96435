// Job holders: which cluster member's scheduler runs each job, and the
// claim by which a member takes its share (store::claim_jobs).
#include <algorithm>

#include "model/ownership.hpp"
#include "store/store.hpp"
#include "store/store_internal.hpp"

namespace coapfleet::server {

bool store::statements::prepare_holders() {
  return prepare(select_holders, sql::select_holders) && prepare(upsert_holder, sql::upsert_holder)
         && prepare(delete_holder, sql::delete_holder);
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
    std::vector<std::pair<std::string, std::string>> rows;  // job, holder ("" none)
    auto s = st.select_holders;
    db::step_result rc;
    while ((rc = s->step()) == db::step_result::row)
      rows.emplace_back(column_text(s, 0), s->is_null(1) ? std::string{} : column_text(s, 1));
    s->reset();
    if (rc != db::step_result::done)
      return st.fail("cannot read the job holders");
    if (known) {
      known->clear();
      for (auto& row : rows)
        known->push_back(row.first);
      std::sort(known->begin(), known->end());
    }
    for (auto& [job, holder] : rows) {
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
      if (!holder.empty() && contains(live, holder)) {
        ++waiting;  // its holder lets go first
        continue;
      }
      if (!st.write(model::put_job_holder{job, me}))
        return false;
      claimed.push_back(job);
    }
    return !st.fence || check_fence();
  });
}

}  // namespace coapfleet::server
