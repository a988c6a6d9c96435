#include "actors/server/job_supervisor.hpp"

#include <algorithm>
#include <memory>
#include <random>
#include <unordered_map>

#include "actors/clock.hpp"
#include "actors/log.hpp"

namespace coapfleet::server {

namespace {

struct job_supervisor_state {
  static inline const char* name = "job-supervisor";
  job_supervisor_config cfg;
  std::unordered_map<std::string, job_actor> jobs;
  std::vector<std::string> order;  ///< creation order, for listings
  std::unordered_map<std::string, bool> creating;
  /// File jobs: job id -> the artifact it names.
  std::unordered_map<std::string, std::string> artifact_of;
  registry_actor registry;
  persistence_actor persistence;
  transport_actor transport;
  artifact_store_actor artifacts;
  std::mt19937_64 rng{std::random_device{}()};
};

using self_ptr = job_supervisor_actor::stateful_pointer<job_supervisor_state>;

/// Job ids look like the seed's: three groups of six hex digits.
std::string new_job_id(job_supervisor_state& st) {
  static const char hex[] = "0123456789abcdef";
  for (;;) {
    std::string id;
    auto bits = st.rng();
    for (int i = 0; i < 18; ++i) {
      if (i == 6 || i == 12)
        id += '-';
      id += hex[bits & 0xf];
      bits >>= 4;
    }
    if (!st.jobs.count(id) && !st.creating.count(id))
      return id;
  }
}

caf::error unknown_job(const std::string& id) {
  return make_api_error(api_errc::not_found, "job not found", "job_id", "job_id", id);
}

job_actor add_job(self_ptr self, model::job_record rec) {
  auto& st = self->state;
  auto id = rec.job_id;
  if (rec.spec.package_type == "file")
    st.artifact_of[id] = rec.spec.artifact;
  auto j = spawn_job(self->system(), std::move(rec), st.cfg.job, st.registry, st.persistence,
                     st.transport);
  self->link_to(j);  // job actors end with the supervisor
  self->send(st.transport, atom::route::value, id, j);
  st.jobs.emplace(id, j);
  st.order.push_back(id);
  return j;
}

/// Persists a new job, then spawns its actor and answers.
void create_job(self_ptr self, model::job_spec spec, const peer& from,
                caf::typed_response_promise<model::job_record> rp) {
  auto& st = self->state;
  model::job_record rec;
  rec.job_id = new_job_id(st);
  rec.spec = std::move(spec);
  rec.status = model::job_status::created;
  rec.created_at = rec.updated_at = now_millis();
  st.creating.emplace(rec.job_id, true);
  write_batch batch;
  batch.ops.emplace_back(put_job{rec});
  self->request(st.persistence, caf::infinite, atom::write::value, std::move(batch))
    .then(
      [self, rp, rec, from](bool) mutable {
        self->state.creating.erase(rec.job_id);
        CF_INFO("job-supervisor", "job ", rec.job_id, " created: ", rec.spec.name, " ",
                rec.spec.version, " (", rec.spec.package_type, ") by ", from.address);
        add_job(self, rec);
        self->send(self->state.transport, atom::changed::value, std::string("updates"));
        rp.deliver(std::move(rec));
      },
      [self, rp, id = rec.job_id](caf::error& err) mutable {
        self->state.creating.erase(id);
        rp.deliver(std::move(err));
      });
}

struct job_collector {
  caf::typed_response_promise<std::vector<model::job_record>> rp;
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
    rp.deliver(std::move(result));
  }
};

/// Asks each job for its record; answers them in the given order (those
/// that answered), only the unfinished ones if asked so.
caf::result<std::vector<model::job_record>> collect_records(self_ptr self,
                                                            const std::vector<job_actor>& jobs,
                                                            bool unfinished_only) {
  auto c = std::make_shared<job_collector>();
  c->rp = self->make_response_promise<std::vector<model::job_record>>();
  c->unfinished_only = unfinished_only;
  if (jobs.empty()) {
    c->rp.deliver(std::vector<model::job_record>{});
    return c->rp;
  }
  c->out.resize(jobs.size());
  c->have.assign(jobs.size(), false);
  c->pending = jobs.size();
  for (size_t k = 0; k < jobs.size(); ++k)
    self->request(jobs[k], std::chrono::seconds(10), atom::get::value)
      .then(
        [c, k](model::job_record& r) {
          c->out[k] = std::move(r);
          c->have[k] = true;
          c->done_one();
        },
        [c](caf::error&) { c->done_one(); });
  return c->rp;
}

}  // namespace

job_supervisor_actor spawn_job_supervisor(caf::actor_system& sys, job_supervisor_config cfg,
                                          std::vector<model::job_record> jobs,
                                          registry_actor registry,
                                          persistence_actor persistence,
                                          transport_actor transport,
                                          artifact_store_actor artifacts) {
  auto fn = [](self_ptr self, job_supervisor_config cfg, std::vector<model::job_record> jobs,
               registry_actor registry, persistence_actor persistence,
               transport_actor transport,
               artifact_store_actor artifacts) -> job_supervisor_actor::behavior_type {
    auto& st = self->state;
    st.artifacts = std::move(artifacts);
    st.cfg = cfg;
    st.registry = std::move(registry);
    st.persistence = std::move(persistence);
    st.transport = std::move(transport);
    size_t resumed = 0;
    for (auto& rec : jobs) {
      bool running = rec.status == model::job_status::in_progress;
      auto j = add_job(self, std::move(rec));
      if (running) {
        self->send(j, atom::resume::value);
        ++resumed;
      }
    }
    CF_INFO("job-supervisor", "started with ", st.jobs.size(), " jobs (", resumed,
            " in progress)");
    return {
      [self](atom::create, model::job_spec& spec,
             const peer& from) -> caf::result<model::job_record> {
        auto problem = model::validate_job_spec(spec);
        if (!problem.empty())
          return make_api_error(api_errc::bad_request, problem.error, problem.field);
        auto rp = self->make_response_promise<model::job_record>();
        if (spec.package_type != "file") {
          create_job(self, std::move(spec), from, rp);
          return rp;
        }
        // A file job names an artifact: it must exist, and the job carries
        // its SHA-256 so every node verifies exactly that version.
        self->request(self->state.artifacts, std::chrono::seconds(10), atom::info::value,
                      spec.artifact)
          .then(
            [self, spec, from, rp](artifact_info& a) mutable {
              spec.artifact_sha256 = a.sha256;
              spec.artifact_size = static_cast<int32_t>(a.size);
              create_job(self, std::move(spec), from, rp);
            },
            [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [self](atom::install, const std::string& id,
             const peer& from) -> caf::result<model::job_record> {
        auto i = self->state.jobs.find(id);
        if (i == self->state.jobs.end())
          return unknown_job(id);
        return self->delegate(i->second, atom::install::value, from);
      },
      [self](atom::status, const std::string& id) -> caf::result<model::job_record> {
        auto i = self->state.jobs.find(id);
        if (i == self->state.jobs.end())
          return unknown_job(id);
        return self->delegate(i->second, atom::get::value);
      },
      [self](atom::report, model::update_report& r, const peer&) -> caf::result<bool> {
        auto i = self->state.jobs.find(r.job_id);
        if (i == self->state.jobs.end())
          return unknown_job(r.job_id);
        return self->delegate(i->second, atom::report::value, std::move(r));
      },
      [self](atom::cancel, const std::string& id,
             const peer& from) -> caf::result<model::job_record> {
        auto i = self->state.jobs.find(id);
        if (i == self->state.jobs.end())
          return unknown_job(id);
        return self->delegate(i->second, atom::cancel::value, from);
      },
      [self](atom::remove, const std::string& id, const peer& from) -> caf::result<bool> {
        // The job decides (in order with its other changes) and drops itself
        // from the store; once that is durable the directory forgets it.
        auto i = self->state.jobs.find(id);
        if (i == self->state.jobs.end())
          return unknown_job(id);
        auto rp = self->make_response_promise<bool>();
        auto job = i->second;
        self->request(job, caf::infinite, atom::remove::value, from)
          .then(
            [self, rp, id, from, job](bool) mutable {
              auto& st = self->state;
              st.jobs.erase(id);
              st.artifact_of.erase(id);
              st.order.erase(std::remove(st.order.begin(), st.order.end(), id), st.order.end());
              self->unlink_from(job);
              self->send_exit(job, caf::exit_reason::user_shutdown);
              self->send(st.transport, atom::forget::value, id);
              self->send(st.transport, atom::changed::value, std::string("updates"));
              CF_INFO("job-supervisor", "job ", id, " deleted by ", from.address);
              rp.deliver(true);
            },
            [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [self](atom::list) -> caf::result<std::vector<model::job_record>> {
        auto& st = self->state;
        std::vector<job_actor> all;
        all.reserve(st.order.size());
        for (auto& id : st.order)
          all.push_back(st.jobs[id]);
        return collect_records(self, all, false);
      },
      [self](atom::uses, const std::string& artifact)
        -> caf::result<std::vector<model::job_record>> {
        auto& st = self->state;
        std::vector<job_actor> named;
        for (auto& id : st.order) {
          auto a = st.artifact_of.find(id);
          if (a != st.artifact_of.end() && a->second == artifact)
            named.push_back(st.jobs[id]);
        }
        return collect_records(self, named, true);
      },
      [self](atom::count) -> uint32_t { return static_cast<uint32_t>(self->state.jobs.size()); },
    };
  };
  return sys.spawn(fn, std::move(cfg), std::move(jobs), std::move(registry),
                   std::move(persistence), std::move(transport), std::move(artifacts));
}

}  // namespace coapfleet::server
