// Internal to the job supervisor (job_supervisor.cpp: the directory,
// supervision, requests; job_cluster.cpp: its share of a cluster's jobs).
#pragma once

#include <functional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <optional>

#include "actors/server/job_supervisor.hpp"
#include "actors/server/member_calls.hpp"
#include "model/ownership.hpp"

namespace coapfleet::server::jobs_detail {

/// A job's actor, or why there is none right now.
struct job_entry {
  job_actor actor;                      ///< invalid while restarting or down
  bool down = false;                    ///< restarted too often: stays down
  std::vector<model::millis> restarts;  ///< times of recent restarts
  /// Work for the job held while it restarts: called with the new actor, or
  /// with the error its requests get.
  std::vector<std::function<void(const caf::expected<job_actor>&)>> waiting;
  model::millis created_at = 0;  ///< orders the fleet-wide listing
  /// Cluster: a job of this member not yet claimed (its requests wait in
  /// `waiting` until the claim, or this deadline).
  model::millis claim_until = 0;
};

struct job_supervisor_state {
  static inline const char* name = "job-supervisor";
  job_supervisor_config cfg;
  std::unordered_map<std::string, job_entry> jobs;
  std::unordered_map<caf::actor_id, std::string> job_of;  ///< live job actor → job id
  std::vector<std::string> order;  ///< creation order, for listings
  std::unordered_map<std::string, bool> creating;
  /// File jobs: job id -> the artifact it names.
  std::unordered_map<std::string, std::string> artifact_of;
  registry_actor registry;
  persistence_actor persistence;
  transport_actor transport;
  artifact_store_actor artifacts;
  std::mt19937_64 rng{std::random_device{}()};
  /// /updates/changes: the jobs changed (or deleted) since its last copy, at
  /// most cfg.max_changes (then `changes_reset`: read GET /updates again).
  std::set<std::string> changed;
  /// Of `changed`: the deleted ones (here or, relayed, on another member).
  std::set<std::string> changed_gone;
  uint64_t changes_seq = 0;
  bool changes_reset = false;
  // The cluster (job_cluster.cpp); `me` is empty when not clustered.
  std::string me;
  bool active = true;                  ///< the member's lease holds
  std::vector<std::string> live;       ///< live members, sorted
  std::unordered_map<std::string, job_supervisor_actor> peers;  ///< their supervisors
  std::set<std::string> releasing;     ///< jobs whose actors stop here (another member's now)
  bool claiming = false;               ///< a claim is under way
  bool claim_again = false;            ///< ask again once it is answered
  uint32_t waiting_claims = 0;         ///< jobs of ours another live member still held
  uint64_t views = 0;
  /// Requests handed to another member's supervisor, not yet answered.
  member_calls remote_calls;

  job_supervisor_state() = default;
  job_supervisor_state(const job_supervisor_state&) = delete;
  job_supervisor_state& operator=(const job_supervisor_state&) = delete;
  /// Job actors end with the supervisor, however it ends.
  ~job_supervisor_state() {
    for (auto& kv : jobs)
      if (kv.second.actor)
        caf::anon_send_exit(kv.second.actor, caf::exit_reason::user_shutdown);
  }
};

using self_ptr = job_supervisor_actor::stateful_pointer<job_supervisor_state>;

/// Spawns the actor of a job, monitors it and routes the transport to it.
job_actor start_job(self_ptr self, model::job_record rec);
/// Adds a job to the directory with its actor started.
job_actor add_job(self_ptr self, model::job_record rec);
/// 5.00: the job's actor stays down (it died too often, or its load failed).
caf::error job_down(const std::string& id);
/// Runs `f` with the job's actor: now, once it is back, or with the error.
template <class F>
void with_job(job_entry& e, const std::string& id, F f) {
  if (e.actor)
    f(e.actor);
  else if (e.down)
    f(job_down(id));
  else
    e.waiting.push_back(std::move(f));
}

/// Hands the requests held for a job to its actor (or their error).
void release_waiting(job_entry& e, const caf::expected<job_actor>& to);
/// A job changed (or went): /updates/changes lists it in its next copy.
void note_change(self_ptr self, const std::string& id);
caf::error unknown_job(const std::string& id);
/// Whether `id` has the shape of the ids new jobs get (three groups of six
/// lower-case hex digits).
bool job_id_shaped(const std::string& id);

// job_collect.cpp

/// Asks each job of `ids` for its record; `done` gets those that answered,
/// in that order (only the unfinished ones if asked so). A restarting job
/// answers once it is back; a job that stays down is left out.
void collect_records(self_ptr self, const std::vector<std::string>& ids, bool unfinished_only,
                     std::function<void(std::vector<model::job_record>)> done);
/// collect_records, answered.
caf::result<std::vector<model::job_record>> collect_records(self_ptr self,
                                                            const std::vector<std::string>& ids,
                                                            bool unfinished_only);
/// `head`, each job's summary in the order of `ids`, then "]}". With
/// `changes` (a copy of /updates/changes): a deleted one (changed_gone; not
/// clustered, any not here) as {"job_id","deleted":true}, and in a cluster
/// one another member runs as that member lists it (asked once for all of
/// its jobs; one it does not list, on its way to another member, is left
/// out: its claim there is relayed as a change).
caf::result<std::string> collect_summaries(self_ptr self, const std::vector<std::string>& ids,
                                           std::string head, bool changes);

// job_cluster.cpp

/// The membership actor's view: claims, hand-overs, a fence.
void take_view(self_ptr self, cluster_view v);

/// Why this member's jobs are not settled ("" when they are): fenced, a
/// claim under way, jobs it lets go of, or of its share that another member
/// still holds or it waits to claim.
std::string jobs_moving(const job_supervisor_state& st);

/// The unfinished jobs naming `artifact` on every member, this one's being
/// `here` (an upload or a deletion of the artifact, which the members
/// share, decides on all of them); 5.03 while a live member has no link or
/// one does not answer.
caf::result<std::vector<model::job_record>> uses_everywhere(self_ptr self,
                                                            const std::string& artifact,
                                                            std::vector<std::string> here);
/// A job this member owns but does not run yet: its requests wait for a claim.
void await_claim(self_ptr self, const std::string& id);
/// A job's actor ended because another member runs it now (or a fence).
void released(self_ptr self, const std::string& id);
/// A new job's id: one this member owns (clustered).
bool owns(const job_supervisor_state& st, const std::string& id);
/// Tells the other members' supervisors that job `id` changed (or was deleted).
void relay_change(self_ptr self, const std::string& id, bool deleted = false);
/// A job another member runs changed (or was deleted there): observers here
/// hear of it, and /updates/changes here lists it.
void remote_change(self_ptr self, const std::string& id, bool deleted);
/// GET /updates from every member.
caf::result<std::string> fleet_listing(self_ptr self);
/// This member's part of it.
caf::result<std::vector<job_part>> local_parts(self_ptr self);
/// The named jobs among those this member runs, as GET /updates lists them.
caf::result<std::vector<job_part>> local_parts(self_ptr self, std::vector<std::string> ids);
/// The member that runs job `id` when another one does and this member has
/// a link to its supervisor (in `peers`); "" otherwise.
std::string member_running(const job_supervisor_state& st, const std::string& id);
caf::error not_active();

/// Where a request for job `id` goes when this member does not run it: to
/// the member that owns it (delegated), or nowhere (nullopt: here, where it
/// waits for the claim or is answered not found).
template <class T, class... Ts>
std::optional<caf::result<T>> elsewhere(self_ptr self, const std::string& id, Ts&&... xs) {
  auto& st = self->state;
  if (st.me.empty() || st.jobs.count(id))
    return std::nullopt;
  // Not an id this system makes: no claim, no member asked for it.
  if (!job_id_shaped(id))
    return caf::result<T>{unknown_job(id)};
  if (!st.active)
    return caf::result<T>{not_active()};
  auto owner = model::owner_of(id, st.live);
  if (owner == st.me || owner.empty() || from_member(self)) {
    await_claim(self, id);
    return std::nullopt;
  }
  auto p = st.peers.find(owner);
  if (p == st.peers.end())
    return caf::result<T>{make_api_error(api_errc::unavailable,
                                         "job " + id + " is run by member " + owner
                                           + ", which this member has no link to yet",
                                         "job_id", "member_id", owner)};
  auto rp = self->template make_response_promise<T>();
  auto call = st.remote_calls.add(owner, [rp](caf::error err) mutable { rp.deliver(std::move(err)); });
  self->request(p->second, std::chrono::seconds(30), std::forward<Ts>(xs)...)
    .then(
      [self, call, rp](T& x) mutable {
        if (self->state.remote_calls.finish(call))
          rp.deliver(std::move(x));
      },
      [self, call, rp](caf::error& err) mutable {
        if (self->state.remote_calls.finish(call))
          rp.deliver(std::move(err));
      });
  return caf::result<T>{rp};
}

}  // namespace coapfleet::server::jobs_detail
