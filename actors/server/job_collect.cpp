// The job supervisor's collectors: the records of many jobs (GET /updates
// with records, the jobs naming an artifact) and their summaries (listings,
// copies of /updates/changes), each asked of its job's actor at once and
// answered in the order asked, here or from the member that runs the job.
#include "actors/server/job_supervisor_internal.hpp"

#include <functional>
#include <map>
#include <memory>

#include "common/log.hpp"

namespace coapfleet::server::jobs_detail {

struct job_collector {
  std::function<void(std::vector<model::job_record>)> done;
  std::vector<model::job_record> out;  ///< in creation order
  std::vector<bool> have;
  size_t pending = 0;
  bool unfinished_only = false;  ///< created or in progress
  void done_one() {
    if (--pending > 0)
      return;
    std::vector<model::job_record> result;
    result.reserve(out.size());
    for (size_t i = 0; i < out.size(); ++i)
      if (have[i] && (!unfinished_only || out[i].status == model::job_status::created
                      || out[i].status == model::job_status::in_progress))
        result.emplace_back(std::move(out[i]));
    done(std::move(result));
  }
};

void collect_records(self_ptr self, const std::vector<std::string>& ids, bool unfinished_only,
                     std::function<void(std::vector<model::job_record>)> done) {
  auto c = std::make_shared<job_collector>();
  c->done = std::move(done);
  c->unfinished_only = unfinished_only;
  if (ids.empty()) {
    c->done({});
    return;
  }
  c->out.resize(ids.size());
  c->have.assign(ids.size(), false);
  c->pending = ids.size();
  for (size_t k = 0; k < ids.size(); ++k) {
    auto ask = [self, c, k](const caf::expected<job_actor>& j) {
      if (!j)
        return c->done_one();
      self->request(*j, std::chrono::seconds(10), atom::get::value)
        .then(
          [c, k](model::job_record& r) {
            c->out[k] = std::move(r);
            c->have[k] = true;
            c->done_one();
          },
          [c](caf::error&) { c->done_one(); });
    };
    with_job(self->state.jobs[ids[k]], ids[k], ask);
  }
}

/// collect_records, answered.
caf::result<std::vector<model::job_record>> collect_records(self_ptr self,
                                                            const std::vector<std::string>& ids,
                                                            bool unfinished_only) {
  auto rp = self->make_response_promise<std::vector<model::job_record>>();
  collect_records(self, ids, unfinished_only,
                  [rp](std::vector<model::job_record> all) mutable { rp.deliver(std::move(all)); });
  return rp;
}

/// `head`, each job's summary (kept by its actor until the job changes) in
/// the order of `ids`, then "]}". A job that does not answer (down for good)
/// is left out; one not here is too, except in a copy of /updates/changes
/// (`changes`): deleted, it is listed as {"job_id":ID,"deleted":true}; run by
/// another member, as that member lists it (see job_supervisor_internal.hpp).
caf::result<std::string> collect_summaries(self_ptr self, const std::vector<std::string>& ids,
                                           std::string head, bool changes) {
  struct collector {
    caf::typed_response_promise<std::string> rp;
    std::string head;
    std::vector<std::string> parts;
    size_t pending = 0;
    void done_one() {
      if (--pending > 0)
        return;
      bool first = true;
      for (auto& p : parts) {
        if (p.empty())
          continue;
        head += first ? "" : ",";
        head += p;
        first = false;
      }
      rp.deliver(head + "]}");
    }
  };
  auto c = std::make_shared<collector>();
  c->rp = self->make_response_promise<std::string>();
  c->head = std::move(head);
  c->parts.resize(ids.size());
  c->pending = ids.size() + 1;
  auto& st = self->state;
  // Jobs other members run: asked of each member at once.
  std::map<std::string, std::vector<size_t>> elsewhere;  ///< by member
  for (size_t k = 0; k < ids.size(); ++k) {
    auto e = st.jobs.find(ids[k]);
    if (e == st.jobs.end()) {
      if (changes && (st.changed_gone.count(ids[k]) || st.me.empty())) {
        c->parts[k] = model::encode_deleted_job(ids[k]);
      } else if (changes) {
        if (auto m = member_running(st, ids[k]); !m.empty())
          elsewhere[m].push_back(k);
      }
      c->done_one();
      continue;
    }
    auto ask = [self, c, k](const caf::expected<job_actor>& j) {
      if (!j)
        return c->done_one();
      self->request(*j, std::chrono::seconds(10), atom::listing::value)
        .then(
          [c, k](std::string& s) {
            c->parts[k] = std::move(s);
            c->done_one();
          },
          [c](caf::error&) { c->done_one(); });
    };
    with_job(e->second, ids[k], ask);
  }
  for (auto& [member, at] : elsewhere) {
    ++c->pending;
    std::vector<std::string> named;
    for (auto k : at)
      named.push_back(ids[k]);
    self->request(st.peers.at(member), std::chrono::seconds(10), atom::listing::value, named)
      .then(
        [c, ids, at = at](std::vector<job_part>& parts) {
          for (auto& p : parts)
            for (auto k : at)
              if (ids[k] == p.job_id)
                c->parts[k] = std::move(p.summary);
          c->done_one();
        },
        [self, c, named, member = member](caf::error& err) {
          // Listed in the next copy instead (this one is taken).
          CF_WARN("job-supervisor", "/updates/changes without the jobs of member ", member,
                  " (in the next copy): ", self->system().render(err));
          for (auto& id : named)
            note_change(self, id);
          c->done_one();
        });
  }
  c->done_one();  // answers at once when no job was asked
  return c->rp;
}

}  // namespace coapfleet::server::jobs_detail
