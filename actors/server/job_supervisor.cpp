#include "actors/server/job_supervisor.hpp"
#include "actors/server/job_supervisor_internal.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <unordered_map>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "model/rules.hpp"

namespace coapfleet::server {

namespace jobs_detail {

// Supervision of one job actor (the supervisor monitors it, not linked):
//
//   running ──down──► restarting ──record loaded──► running (new actor, route sent again)
//                        │   requests for the job wait here, then go to the new actor
//                        ├── more than max_restarts within restart_window ──► down
//                        ├── the load failed ──────────────────────────────► down
//                        └── the store no longer has it (deleted) ─────────► gone
//   down: requests for the job answer 5.00 naming it.
//
// A job restarts from the store, read through the persistence actor: a write
// the dead actor sent is in the persistence actor's mailbox ahead of the
// read, so the store has it (or it failed), and the new actor holds exactly
// what is durable. The supervisor holds no copy of a job's record that
// could lag behind it.


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
    if (!st.jobs.count(id) && !st.creating.count(id) && owns(st, id))
      return id;
  }
}

bool job_id_shaped(const std::string& id) {
  if (id.size() != 20)
    return false;
  for (size_t i = 0; i < id.size(); ++i) {
    char c = id[i];
    bool ok = (i == 6 || i == 13) ? c == '-' : (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    if (!ok)
      return false;
  }
  return true;
}

caf::error unknown_job(const std::string& id) {
  return make_api_error(api_errc::not_found, "job not found", "job_id", "job_id", id);
}

caf::error job_down(const std::string& id) {
  return make_api_error(api_errc::internal,
                        "job " + id + " is unavailable: its actor failed too often", "job_id",
                        "job_id", id);
}

/// Spawns the actor of a job, monitors it and routes the transport to it.
job_actor start_job(self_ptr self, model::job_record rec) {
  auto& st = self->state;
  auto id = rec.job_id;
  auto j = spawn_job(self->system(), std::move(rec), st.cfg.job, st.registry, st.persistence,
                     st.transport, caf::actor_cast<job_supervisor_actor>(self));
  self->monitor(j);
  st.job_of.emplace(j.id(), id);
  self->send(st.transport, atom::route::value, id, j);
  return j;
}

job_actor add_job(self_ptr self, model::job_record rec) {
  auto& st = self->state;
  auto id = rec.job_id;
  if (rec.spec.package_type == "file")
    st.artifact_of[id] = rec.spec.artifact;
  auto created_at = rec.created_at;
  auto j = start_job(self, std::move(rec));
  auto& e = st.jobs[id];
  e.actor = j;
  e.created_at = created_at;
  e.claim_until = 0;
  st.order.push_back(id);  // new, or claimed (a job let go left the order)
  return j;
}

void release_waiting(job_entry& e, const caf::expected<job_actor>& to) {
  auto waiting = std::move(e.waiting);
  e.waiting.clear();
  for (auto& f : waiting)
    f(to);
}

/// Sends a request for a job on to its actor (once it is back, while it
/// restarts); a job that stays down answers 5.00 naming it.
template <class T, class... Ts>
caf::result<T> forward(self_ptr self, const std::string& id, Ts... xs) {
  auto i = self->state.jobs.find(id);
  if (i == self->state.jobs.end())
    return unknown_job(id);
  auto& e = i->second;
  if (e.actor)
    return self->delegate(e.actor, std::move(xs)...);
  if (e.down)
    return job_down(id);
  auto rp = self->make_response_promise<T>();
  e.waiting.push_back([rp, xs...](const caf::expected<job_actor>& a) mutable {
    if (a)
      rp.delegate(*a, xs...);
    else
      rp.deliver(a.error());
  });
  return rp;
}


/// A job changed (or went): /updates/changes lists it in its next copy.
void note_change(self_ptr self, const std::string& id) {
  auto& st = self->state;
  if (st.changes_reset)
    return;
  // One lookup while there is room; at the limit, a new id means more
  // changed than a copy lists.
  if (st.changed.size() < st.cfg.max_changes || st.changed.count(id)) {
    st.changed.insert(id);
    return;
  }
  st.changed.clear();
  st.changed_gone.clear();
  st.changes_reset = true;  // the next copy: read GET /updates again
}

/// A job is gone (deleted): its actor ends, its resources go.
void forget_job(self_ptr self, const std::string& id) {
  auto& st = self->state;
  auto i = st.jobs.find(id);
  if (i == st.jobs.end())
    return;
  auto e = std::move(i->second);
  st.jobs.erase(i);
  if (e.actor) {
    st.job_of.erase(e.actor.id());
    self->demonitor(e.actor.address());
    self->send_exit(e.actor, caf::exit_reason::user_shutdown);
  }
  release_waiting(e, unknown_job(id));
  st.artifact_of.erase(id);
  st.order.erase(std::remove(st.order.begin(), st.order.end(), id), st.order.end());
  self->send(st.transport, atom::forget::value, id);
  if (st.releasing.count(id))  // deleted while it was being let go
    released(self, id);
  note_change(self, id);
  if (!st.changes_reset)
    st.changed_gone.insert(id);
  relay_change(self, id, true);  // observers on the other members get 4.04
  self->send(st.transport, atom::changed::value, resource{resource_kind::updates, {}},
             urgency::control);
}

/// A job actor went down: restart it from the store, unless it did so too often.
void job_went_down(self_ptr self, const caf::down_msg& msg) {
  auto& st = self->state;
  auto k = st.job_of.find(msg.source.id());
  if (k == st.job_of.end())
    return;  // not a child any more
  auto id = std::move(k->second);
  st.job_of.erase(k);
  if (st.releasing.count(id))
    return released(self, id);  // another member runs it now
  auto& e = st.jobs[id];
  e.actor = nullptr;
  CF_WARN("job-supervisor", "job actor of ", id, " went down: ", caf::to_string(msg.reason));
  auto now = st.cfg.now();
  auto since = now - static_cast<model::millis>(st.cfg.restart_window.count());
  e.restarts.erase(std::remove_if(e.restarts.begin(), e.restarts.end(),
                                  [since](model::millis t) { return t <= since; }),
                   e.restarts.end());
  if (e.restarts.size() >= st.cfg.max_restarts) {
    CF_ERROR("job-supervisor", "job actor of ", id, " went down ", e.restarts.size() + 1,
             " times within ", st.cfg.restart_window.count() / 1000,
             " s: it stays down, its requests answer 5.00");
    e.down = true;
    release_waiting(e, job_down(id));
    return;
  }
  e.restarts.push_back(now);
  self->request(st.persistence, caf::infinite, atom::load::value, atom::job::value, id)
    .then(
      [self, id](model::job_record& rec) {
        auto& st = self->state;
        auto i = st.jobs.find(id);
        if (i == st.jobs.end() || i->second.actor)
          return;
        if (!st.active || !owns(st, id)) {  // another member's now (or fenced)
          st.releasing.insert(id);
          released(self, id);
          return;
        }
        auto running = model::job_unsettled(rec);
        auto status = rec.status;
        auto j = start_job(self, std::move(rec));
        i->second.actor = j;
        CF_INFO("job-supervisor", "job actor of ", id, " restarted from the store (",
                to_string(status), ")");
        if (running)
          self->send(j, atom::resume::value);
        // A change it committed may not have been published before it died.
        note_change(self, id);
        self->send(st.transport, atom::changed::value, resource{resource_kind::job_status, id},
                   urgency::control);
        self->send(st.transport, atom::changed::value, resource{resource_kind::updates, {}},
                   urgency::control);
        release_waiting(i->second, j);
      },
      [self, id](caf::error& err) {
        auto& st = self->state;
        auto i = st.jobs.find(id);
        if (i == st.jobs.end())
          return;
        if (err.category() == api_category
            && err.code() == static_cast<uint8_t>(api_errc::not_found)) {
          CF_INFO("job-supervisor", "job ", id, " is no longer stored: dropped");
          forget_job(self, id);
          return;
        }
        CF_ERROR("job-supervisor", "job actor of ", id,
                 " cannot be restarted, it stays down: ", caf::to_string(err));
        i->second.down = true;
        release_waiting(i->second, job_down(id));
      });
}

/// Persists a new job, then spawns its actor and answers.
void create_job(self_ptr self, model::job_spec spec, const peer& from,
                caf::typed_response_promise<model::job_record> rp) {
  auto& st = self->state;
  if (!st.me.empty()
      && (!st.active || std::find(st.live.begin(), st.live.end(), st.me) == st.live.end()))
  {
    rp.deliver(not_active());
    return;
  }
  model::job_record rec;
  rec.job_id = new_job_id(st);
  rec.spec = std::move(spec);
  rec.status = model::job_status::created;
  rec.created_at = rec.updated_at = now_millis();
  st.creating.emplace(rec.job_id, true);
  write_batch batch;
  batch.ops.emplace_back(put_job{rec});
  if (!st.me.empty())  // this member's scheduler runs it
    batch.ops.emplace_back(model::put_job_holder{rec.job_id, st.me});
  self->request(st.persistence, caf::infinite, atom::write::value, std::move(batch))
    .then(
      [self, rp, rec, from](atom::ok) mutable {
        self->state.creating.erase(rec.job_id);
        CF_INFO("job-supervisor", "job ", rec.job_id, " created: ", rec.spec.name, " ",
                rec.spec.version, " (", rec.spec.package_type, ") by ", from.address);
        add_job(self, rec);
        note_change(self, rec.job_id);
        relay_change(self, rec.job_id);
        self->send(self->state.transport, atom::changed::value,
                   resource{resource_kind::updates, {}}, urgency::control);
        rp.deliver(std::move(rec));
      },
      [self, rp, id = rec.job_id](caf::error& err) mutable {
        self->state.creating.erase(id);
        rp.deliver(std::move(err));
      });
}

}  // namespace jobs_detail

using namespace jobs_detail;

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
    // A member of a cluster acts on jobs once it has seen the live members.
    st.me = st.cfg.member_id;
    st.active = st.me.empty();
    self->set_down_handler([self](caf::down_msg& msg) { job_went_down(self, msg); });
    // Nodes that register or come back online may join running jobs.
    self->send(st.registry, atom::observe::value, caf::actor_cast<caf::actor>(self));
    size_t resumed = 0;
    for (auto& rec : jobs) {
      bool running = model::job_unsettled(rec);
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
              // An operator's pin (what a signed job covers) must be the
              // stored version.
              if (!spec.artifact_sha256.empty() && spec.artifact_sha256 != a.sha256) {
                rp.deliver(make_api_error(api_errc::conflict,
                                          "artifact " + a.name + " has SHA-256 " + a.sha256
                                            + ", not the artifact_sha256 of the request",
                                          "artifact_sha256", "sha256", a.sha256));
                return;
              }
              spec.artifact_sha256 = a.sha256;
              spec.artifact_size = static_cast<int32_t>(a.size);
              create_job(self, std::move(spec), from, rp);
            },
            [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [self](atom::install, const std::string& id,
             const peer& from) -> caf::result<model::job_record> {
        if (auto r = elsewhere<model::job_record>(self, id, atom::install::value, id, from))
          return std::move(*r);
        return forward<model::job_record>(self, id, atom::install::value, from);
      },
      [self](atom::status, const std::string& id) -> caf::result<model::job_record> {
        if (auto r = elsewhere<model::job_record>(self, id, atom::status::value, id))
          return std::move(*r);
        return forward<model::job_record>(self, id, atom::get::value);
      },
      [self](atom::report, model::update_report& r, const peer& from) -> caf::result<atom::ok> {
        auto id = r.job_id;
        if (auto x = elsewhere<atom::ok>(self, id, atom::report::value, r, from))
          return std::move(*x);
        return forward<atom::ok>(self, id, atom::report::value, std::move(r));
      },
      [self](atom::cancel, const std::string& id, bool force,
             const peer& from) -> caf::result<model::job_record> {
        if (auto r = elsewhere<model::job_record>(self, id, atom::cancel::value, id, force, from))
          return std::move(*r);
        return forward<model::job_record>(self, id, atom::cancel::value, force, from);
      },
      [self](atom::retry, const std::string& id,
             const peer& from) -> caf::result<model::job_record> {
        if (auto r = elsewhere<model::job_record>(self, id, atom::retry::value, id, from))
          return std::move(*r);
        return forward<model::job_record>(self, id, atom::retry::value, from);
      },
      [self](atom::forget, const std::string& node) {
        if (!from_member(self))
          for (auto& [member, peer] : self->state.peers)
            self->send(peer, atom::forget::value, node);
        for (auto& [id, e] : self->state.jobs)
          if (e.actor)
            self->send(e.actor, atom::forget::value, node);
      },
      [self](atom::enroll, const job_target& t) {
        // Each job decides (a finished one drops it at once): registrations
        // and returns to online are rare next to reports. Every member's
        // jobs hear of it.
        if (!from_member(self))
          for (auto& [member, peer] : self->state.peers)
            self->send(peer, atom::enroll::value, t);
        for (auto& [id, e] : self->state.jobs)
          if (e.actor)
            self->send(e.actor, atom::enroll::value, t);
      },
      [self](atom::action, const std::string& id, std::string& action,
             const peer& from) -> caf::result<model::job_record> {
        if (auto r = elsewhere<model::job_record>(self, id, atom::action::value, id, action, from))
          return std::move(*r);
        return forward<model::job_record>(self, id, atom::action::value, std::move(action), from);
      },
      [self](atom::remove, const std::string& id, const peer& from) -> caf::result<atom::ok> {
        // The job decides (in order with its other changes) and drops itself
        // from the store; once that is durable the directory forgets it.
        if (auto r = elsewhere<atom::ok>(self, id, atom::remove::value, id, from))
          return std::move(*r);
        auto i = self->state.jobs.find(id);
        if (i == self->state.jobs.end())
          return unknown_job(id);
        auto rp = self->make_response_promise<atom::ok>();
        auto drop = [self, rp, id, from](const caf::expected<job_actor>& j) mutable {
          if (!j) {
            rp.deliver(j.error());
            return;
          }
          self->request(*j, caf::infinite, atom::remove::value, from)
            .then(
              [self, rp, id, from](atom::ok) mutable {
                forget_job(self, id);
                CF_INFO("job-supervisor", "job ", id, " deleted by ", from.address);
                rp.deliver(atom::ok::value);
              },
              [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        };
        with_job(i->second, id, drop);
        return rp;
      },
      [self](atom::list) -> caf::result<std::vector<model::job_record>> {
        return collect_records(self, self->state.order, false);
      },
      [self](atom::listing) -> caf::result<std::string> {
        if (!self->state.me.empty())
          return fleet_listing(self);
        return collect_summaries(self, self->state.order, "{\"updates\":[", false);
      },
      [self](atom::changed, const std::string& id) {
        if (from_member(self))
          return remote_change(self, id, false);
        note_change(self, id);
        self->state.changed_gone.erase(id);
        relay_change(self, id);
      },
      [self](atom::changed, const std::string& id, bool deleted) {
        remote_change(self, id, deleted);
      },
      [self](atom::listing, std::vector<std::string>& ids) {
        return local_parts(self, std::move(ids));
      },
      [self](atom::cluster, cluster_view& v) { take_view(self, std::move(v)); },
      [self](atom::listing, atom::cluster) { return local_parts(self); },
      [self](atom::changes) -> caf::result<std::string> {
        // One copy: the jobs changed since the previous one, chained by number.
        auto& st = self->state;
        auto from = st.changes_seq;
        auto to = ++st.changes_seq;
        std::string head = "{\"from\":" + std::to_string(from) + ",\"to\":" + std::to_string(to)
                           + ",\"reset\":" + (st.changes_reset ? "true" : "false")
                           + ",\"updates\":[";
        std::vector<std::string> ids(st.changed.begin(), st.changed.end());
        auto out = collect_summaries(self, ids, std::move(head), true);
        st.changed.clear();
        st.changed_gone.clear();
        st.changes_reset = false;
        return out;
      },
      [self](atom::uses, const std::string& artifact)
        -> caf::result<std::vector<model::job_record>> {
        auto& st = self->state;
        std::vector<std::string> named;
        for (auto& id : st.order) {
          auto a = st.artifact_of.find(id);
          if (a != st.artifact_of.end() && a->second == artifact)
            named.push_back(id);
        }
        if (st.me.empty())
          return collect_records(self, named, true);
        // In a cluster an upload or a deletion decides for every member,
        // which cannot say while its jobs move between members.
        if (auto moving = jobs_moving(st); !moving.empty())
          return make_api_error(api_errc::unavailable,
                                "jobs are moving between members (" + moving
                                  + "): which of them name artifact " + artifact
                                  + " is not known; retry",
                                "name");
        if (from_member(self))
          return collect_records(self, named, true);
        return uses_everywhere(self, artifact, std::move(named));
      },
      [self](atom::count) -> uint32_t { return static_cast<uint32_t>(self->state.jobs.size()); },
    };
  };
  return sys.spawn(fn, std::move(cfg), std::move(jobs), std::move(registry),
                   std::move(persistence), std::move(transport), std::move(artifacts));
}

}  // namespace coapfleet::server
