// The job supervisor in a cluster: each job is run by one live member, the
// one rendezvous hashing of its id picks over the live members
// (model::owner_of), and the store records which member runs it (its
// holder, store::claim_jobs). Every heartbeat the membership actor tells
// the supervisor which members are live:
//
//   a job of another member now ──► its actor stops; once it has ended (its
//       writes are ahead in the persistence actor's mailbox) the claim lets
//       go of it in the store
//   a job of this member ──► claimed when no live member holds it (none, or
//       one whose lease lapsed: its writes are fenced), loaded from the
//       store and resumed where it stood (waves, soak timers, retries)
//   fenced (the lease lapsed) ──► every job's actor stops; the others take
//       them over
//
// A request for a job another member runs is delegated to that member's
// supervisor (once: a request from a member is never handed on); one for a
// job of this member not yet claimed waits for the claim. Job changes are
// relayed to the other members so that their observers hear of them.
#include <algorithm>

#include "actors/server/job_supervisor_internal.hpp"
#include "common/clock.hpp"
#include "common/log.hpp"
#include "model/rules.hpp"

namespace coapfleet::server::jobs_detail {

namespace {

constexpr model::millis claim_wait_ms = 10'000;

/// Requests waiting for a claim that did not bring their job. With the
/// stored job ids (`known`, after a claim): a job not stored is answered
/// not found, one another member owns (the members saw the cluster change
/// at different times) 5.03 at once, so the client asks again and is sent
/// there. Otherwise, or without `known`, they wait until their deadline
/// (then 5.03: retry). `why`: every one is answered that.
void expire_pending(self_ptr self, const std::vector<std::string>* known,
                    const caf::error& why = {}) {
  auto& st = self->state;
  auto now = now_millis();
  for (auto i = st.jobs.begin(); i != st.jobs.end();) {
    auto& e = i->second;
    if (e.claim_until == 0) {
      ++i;
      continue;
    }
    auto id = i->first;
    bool stored = !known || std::binary_search(known->begin(), known->end(), id);
    bool elsewhere = known && stored && !owns(st, id);
    if (!why && stored && !elsewhere && now < e.claim_until) {
      ++i;
      continue;
    }
    auto entry = std::move(e);
    i = st.jobs.erase(i);
    release_waiting(entry, why       ? why
                           : !stored ? unknown_job(id)
                                     : make_api_error(api_errc::unavailable,
                                                      "job " + id
                                                        + " is being handed over between "
                                                          "members; retry",
                                                      "job_id", "job_id", id));
  }
}

/// Asks the store for this member's jobs (one claim at a time).
void claim(self_ptr self) {
  auto& st = self->state;
  if (!st.active || !st.releasing.empty())
    return;
  if (st.claiming) {
    st.claim_again = true;
    return;
  }
  st.claiming = true;
  std::vector<std::string> held;
  for (auto& [id, e] : st.jobs)
    if (e.claim_until == 0)
      held.push_back(id);
  self->request(st.persistence, caf::infinite, atom::claim::value, st.me, st.live, held)
    .then(
      [self](job_claim& c) {
        auto& st = self->state;
        st.claiming = false;
        st.waiting_claims = c.waiting;
        for (auto& rec : c.claimed) {
          auto i = st.jobs.find(rec.job_id);
          if (!st.active || (i != st.jobs.end() && i->second.claim_until == 0)
              || !owns(st, rec.job_id))
            continue;  // runs here already, or the members changed meanwhile
          auto id = rec.job_id;
          bool running = model::job_unsettled(rec);
          auto status = rec.status;
          auto j = add_job(self, std::move(rec));
          CF_INFO("job-supervisor", "job ", id, " is run by this member now (",
                  to_string(status), running ? ", resumed)" : ")");
          if (running)
            self->send(j, atom::resume::value);
          note_change(self, id);
          relay_change(self, id);  // its state as it runs here now
          self->send(st.transport, atom::changed::value,
                     resource{resource_kind::updates, {}}, urgency::control);
          release_waiting(st.jobs[id], j);
        }
        expire_pending(self, &c.known);
        if (st.claim_again) {
          st.claim_again = false;
          claim(self);
        }
      },
      [self](caf::error& err) {
        auto& st = self->state;
        st.claiming = false;
        st.claim_again = false;
        CF_WARN("job-supervisor", "cannot claim jobs: ", self->system().render(err));
        expire_pending(self, nullptr);
      });
}

/// Stops the actor of a job this member no longer runs.
void let_go(self_ptr self, const std::string& id, job_entry& e, const char* why) {
  auto& st = self->state;
  st.releasing.insert(id);
  CF_INFO("job-supervisor", "job ", id, ": ", why);
  self->send_exit(e.actor, caf::exit_reason::user_shutdown);
}

/// This member's jobs (of `ids`) as GET /updates lists them, to `done`.
template <class F>
void collect_parts(self_ptr self, const std::vector<std::string>& ids, F done) {
  struct collector {
    std::vector<job_part> parts;
    size_t pending = 1;
    F done;
    explicit collector(F f) : done(std::move(f)) {}
    void one() {
      if (--pending == 0)
        done(std::move(parts));
    }
  };
  auto c = std::make_shared<collector>(std::move(done));
  for (auto& id : ids) {
    auto i = self->state.jobs.find(id);
    if (i == self->state.jobs.end() || !i->second.actor)
      continue;
    ++c->pending;
    auto created_at = i->second.created_at;
    self->request(i->second.actor, std::chrono::seconds(10), atom::listing::value)
      .then(
        [c, id, created_at](std::string& s) {
          c->parts.push_back({id, created_at, std::move(s)});
          c->one();
        },
        [c](caf::error&) { c->one(); });
  }
  c->one();
}

}  // namespace

caf::error not_active() {
  return make_api_error(api_errc::unavailable,
                        "this member's lease in the store lapsed: it runs no job until it has "
                        "joined again (the other members run its jobs)");
}

bool owns(const job_supervisor_state& st, const std::string& id) {
  return st.me.empty() || model::owner_of(id, st.live) == st.me;
}

void await_claim(self_ptr self, const std::string& id) {
  auto& st = self->state;
  auto& e = st.jobs[id];  // no actor, not down: its requests wait
  if (e.claim_until == 0)
    e.claim_until = now_millis() + claim_wait_ms;
  claim(self);
}

void released(self_ptr self, const std::string& id) {
  auto& st = self->state;
  st.releasing.erase(id);
  auto i = st.jobs.find(id);
  if (i != st.jobs.end()) {
    auto e = std::move(i->second);
    st.jobs.erase(i);
    auto owner = model::owner_of(id, st.live);
    release_waiting(e, make_api_error(api_errc::unavailable,
                                      "job " + id + " moved to member " + owner + "; retry",
                                      "job_id", "member_id", owner));
  }
  st.order.erase(std::remove(st.order.begin(), st.order.end(), id), st.order.end());
  st.artifact_of.erase(id);
  if (st.releasing.empty())
    claim(self);  // the store lets go of them
}

void take_view(self_ptr self, cluster_view v) {
  auto& st = self->state;
  st.me = v.me;
  ++st.views;
  bool was_active = st.active;
  st.active = v.active;
  bool changed = st.live != v.live || st.views == 1;
  st.live = std::move(v.live);
  st.peers.clear();
  for (auto& p : v.peers)
    if (p.jobs)
      st.peers[p.member_id] = caf::actor_cast<job_supervisor_actor>(p.jobs);
  // Requests handed to a member that went away are answered now (retry).
  st.remote_calls.fail_gone([&st](const std::string& m) { return st.peers.count(m) > 0; });
  // A job that stays down here (its actor died too often) is given up once
  // another member runs it: the store lets go of it, and that member claims
  // it and tries again.
  std::vector<std::string> down_elsewhere;
  for (auto& [id, e] : st.jobs)
    if (e.down && !e.actor && !st.releasing.count(id) && (!st.active || !owns(st, id)))
      down_elsewhere.push_back(id);
  for (auto& id : down_elsewhere) {
    CF_WARN("job-supervisor", "job ", id, " stays down here: given up, another member runs it");
    st.releasing.insert(id);
    released(self, id);
  }
  if (!st.active) {
    size_t n = 0;
    for (auto& [id, e] : st.jobs)
      if (e.actor && !st.releasing.count(id)) {
        let_go(self, id, e, "stopped: this member is fenced");
        ++n;
      }
    if (was_active)
      CF_WARN("job-supervisor", "fenced: ", n, " jobs stopped (the other members take them over)");
    expire_pending(self, nullptr, not_active());
    return;
  }
  if (changed)
    CF_INFO("job-supervisor", "live members: ", member_list(st.live));
  for (auto& [id, e] : st.jobs)
    if (e.actor && !st.releasing.count(id) && !owns(st, id))
      let_go(self, id, e, "another member runs it now");
  bool pending = std::any_of(st.jobs.begin(), st.jobs.end(),
                             [](auto& kv) { return kv.second.claim_until != 0; });
  if (changed || pending || st.waiting_claims > 0 || st.views % 10 == 0)
    claim(self);
  expire_pending(self, nullptr);
}

std::string jobs_moving(const job_supervisor_state& st) {
  if (!st.active)
    return st.me + " is fenced";
  if (st.claiming)
    return st.me + " is claiming its share";
  if (!st.releasing.empty())
    return st.me + " lets go of " + std::to_string(st.releasing.size());
  if (st.waiting_claims > 0)
    return std::to_string(st.waiting_claims) + " of " + st.me + "'s share held elsewhere";
  for (auto& [id, e] : st.jobs)
    if (e.claim_until != 0)
      return st.me + " awaits job " + id;
  return {};
}

namespace {

/// Gathers what this member (`local`, which calls back once) and every
/// linked member (`ask(peer)` sends the request) answer; `done` gets it all,
/// and a member that did not answer ("" if all did).
template <class T, class Ask, class Local, class Done>
void from_every_member(self_ptr self, Ask ask, Local local, Done done) {
  struct gather {
    Done done;
    std::vector<T> all;
    size_t pending = 1;
    std::string silent;
    void add(std::vector<T>&& more) {
      for (auto& x : more)
        all.push_back(std::move(x));
      one();
    }
    void one() {
      if (--pending == 0)
        done(std::move(all), silent);
    }
  };
  auto g = std::make_shared<gather>(gather{std::move(done), {}, 1, {}});
  for (auto& [member, peer] : self->state.peers) {
    ++g->pending;
    ask(peer).then([g](std::vector<T>& v) { g->add(std::move(v)); },
                   [self, g, member = member](caf::error& err) {
                     CF_WARN("job-supervisor", "member ", member, " did not answer: ",
                             self->system().render(err));
                     g->silent = member;
                     g->one();
                   });
  }
  ++g->pending;
  local([g](std::vector<T> v) { g->add(std::move(v)); });
  g->one();
}

}  // namespace

caf::result<std::vector<model::job_record>> uses_everywhere(self_ptr self,
                                                            const std::string& artifact,
                                                            std::vector<std::string> here) {
  auto& st = self->state;
  for (auto& m : st.live)
    if (m != st.me && st.peers.count(m) == 0)
      return make_api_error(api_errc::unavailable,
                            "member " + m + " is live but not linked: which of its jobs name "
                              "artifact " + artifact + " is not known; retry",
                            "name", "member_id", m);
  auto rp = self->make_response_promise<std::vector<model::job_record>>();
  // Each member answers for its own jobs (a request from a member is not
  // handed on).
  from_every_member<model::job_record>(
    self,
    [self, artifact](const job_supervisor_actor& peer) {
      return self->request(peer, std::chrono::seconds(10), atom::uses::value, artifact);
    },
    [self, here = std::move(here)](auto take) { collect_records(self, here, true, take); },
    [rp](std::vector<model::job_record> jobs, const std::string& silent) mutable {
      if (silent.empty())
        rp.deliver(std::move(jobs));
      else
        rp.deliver(make_api_error(api_errc::unavailable,
                                  "member " + silent + " did not say which of its jobs name the "
                                  "artifact; retry",
                                  "name", "member_id", silent));
    });
  return rp;
}

void relay_change(self_ptr self, const std::string& id, bool deleted) {
  for (auto& [member, peer] : self->state.peers)
    self->send(peer, atom::changed::value, id, deleted);
}

void remote_change(self_ptr self, const std::string& id, bool deleted) {
  auto& st = self->state;
  auto i = st.jobs.find(id);
  if (i != st.jobs.end() && i->second.actor)
    return;  // runs here (a late relay from its previous member)
  // The next copy of /updates/changes here lists it, as the member that
  // runs it lists it then (or deleted).
  note_change(self, id);
  if (deleted && !st.changes_reset)
    st.changed_gone.insert(id);  // (a late change from its previous member
                                 // leaves a deletion listed as one)
  // The transport serves /updates/<id>/status here too, rendered through the
  // member that runs it: its observers here hear of the change (a job
  // deleted there: 4.04, which ends their observation). Nobody observing:
  // nothing is kept.
  self->send(st.transport, atom::changed::value, resource{resource_kind::job_status, id},
             urgency::telemetry);
  self->send(st.transport, atom::changed::value, resource{resource_kind::updates, {}},
             urgency::telemetry);
}

caf::result<std::vector<job_part>> local_parts(self_ptr self) {
  auto rp = self->make_response_promise<std::vector<job_part>>();
  collect_parts(self, self->state.order,
                [rp](std::vector<job_part> parts) mutable { rp.deliver(std::move(parts)); });
  return rp;
}

caf::result<std::vector<job_part>> local_parts(self_ptr self, std::vector<std::string> ids) {
  auto rp = self->make_response_promise<std::vector<job_part>>();
  collect_parts(self, ids,
                [rp](std::vector<job_part> parts) mutable { rp.deliver(std::move(parts)); });
  return rp;
}

std::string member_running(const job_supervisor_state& st, const std::string& id) {
  if (st.me.empty())
    return {};
  auto owner = model::owner_of(id, st.live);
  if (owner.empty() || owner == st.me || !st.peers.count(owner))
    return {};
  return owner;
}

caf::result<std::string> fleet_listing(self_ptr self) {
  auto rp = self->make_response_promise<std::string>();
  from_every_member<job_part>(
    self,
    [self](const job_supervisor_actor& peer) {
      return self->request(peer, std::chrono::seconds(5), atom::listing::value,
                           atom::cluster::value);
    },
    [self](auto take) { collect_parts(self, self->state.order, take); },
    // A member that did not answer: GET /updates without its jobs (logged).
    [rp](std::vector<job_part> parts, const std::string&) mutable {
      std::sort(parts.begin(), parts.end(), [](const job_part& a, const job_part& b) {
        return a.created_at != b.created_at ? a.created_at < b.created_at : a.job_id < b.job_id;
      });
      std::string out = "{\"updates\":[";
      const std::string* last = nullptr;
      for (auto& p : parts) {
        if (last && *last == p.job_id)
          continue;  // listed by two members while it moves
        if (last)
          out += ',';
        out += p.summary;
        last = &p.job_id;
      }
      rp.deliver(out + "]}");
    });
  return rp;
}

}  // namespace coapfleet::server::jobs_detail
