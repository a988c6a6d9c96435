#include "actors/server/persistence.hpp"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <algorithm>
#include <unordered_map>

#include "common/clock.hpp"
#include "common/log.hpp"

namespace coapfleet::server {

namespace {

struct persistence_state {
  static inline const char* name = "persistence";
  std::unique_ptr<store> db;
  persistence_config cfg;
  /// Durable writes waiting for the next commit, with who waits for them.
  std::vector<write_op> pending;
  std::vector<caf::typed_response_promise<atom::ok>> waiting;
  /// Latest health per node, not yet committed.
  std::unordered_map<std::string, put_health> dirty_health;
  bool commit_scheduled = false;
  bool health_timer = false;
  uint64_t commits = 0;
  uint64_t absorbed = 0;       ///< health reports taken so far
  uint64_t absorbed_told = 0;  ///< what the transport was told last
};

using self_ptr = persistence_actor::stateful_pointer<persistence_state>;

void tell_absorbed(self_ptr self) {
  auto& st = self->state;
  if (!st.cfg.transport || st.absorbed == st.absorbed_told)
    return;
  st.absorbed_told = st.absorbed;
  self->send(st.cfg.transport, atom::absorbed::value, st.absorbed);
}

/// Commits everything pending in one transaction and answers every waiter.
void commit_now(self_ptr self) {
  auto& st = self->state;
  st.commit_scheduled = false;
  tell_absorbed(self);
  if (st.pending.empty() && st.dirty_health.empty())
    return;
  std::vector<write_op> ops;
  ops.swap(st.pending);
  auto waiting = std::move(st.waiting);
  st.waiting.clear();
  auto durable = ops.size();
  ops.reserve(ops.size() + st.dirty_health.size());
  for (auto& kv : st.dirty_health)
    ops.emplace_back(std::move(kv.second));
  st.dirty_health.clear();
  bool ok = st.db->apply(ops);
  ++st.commits;
  if (ok) {
    CF_TRACE("persistence", "committed ops=", ops.size(), " durable=", durable,
             " waiters=", waiting.size());
    // The transport has the new audit records before any action they record
    // is acknowledged (it serves GET /audit from them).
    auto audited = st.db->take_audited();
    if (!audited.empty() && st.cfg.transport)
      self->send(st.cfg.transport, atom::audit::value, std::move(audited));
    for (auto& rp : waiting)
      rp.deliver(atom::ok::value);
  } else {
    CF_ERROR("persistence", "commit failed: ", st.db->last_error(), " ops=", ops.size());
    // A member whose lease lapsed is out of the cluster until it joins
    // again: the sender should try another member.
    auto err = st.db->fenced()
                 ? make_api_error(api_errc::unavailable,
                                  "this member is not in the cluster now (its lease lapsed);"
                                  " another member can take the request")
                 : make_api_error(api_errc::internal,
                                  "database write failed: " + st.db->last_error());
    for (auto& rp : waiting)
      rp.deliver(err);
    // The writers of durable operations were told; the latest health of each
    // node is nobody's to retry: keep it (unless a newer one came in) for the
    // next commit, which the health timer brings.
    // A fenced member's nodes are another member's now: their health is not its own to keep.
    size_t kept = 0;
    for (size_t i = st.db->fenced() ? ops.size() : durable; i < ops.size(); ++i) {
      if (auto* h = std::get_if<put_health>(&ops[i])) {
        auto id = h->health.node_id;
        if (st.dirty_health.emplace(std::move(id), std::move(*h)).second)
          ++kept;
      }
    }
    if (kept > 0 && !st.health_timer) {
      st.health_timer = true;
      self->delayed_send(self, st.cfg.health_flush, atom::tick::value);
    }
  }
}

/// A supervisor restarts a dead child from this: first everything pending
/// is committed (a write the child sent before it died is in the mailbox
/// ahead of this request, so it is either durable now or failed), then the
/// store is read. The latest health not yet committed (kept from a failed
/// commit) is laid over the stored one.
caf::result<model::node_record> load_node(self_ptr self, const std::string& id) {
  auto& st = self->state;
  commit_now(self);
  auto n = st.db->load_node(id);
  if (!n)
    return make_api_error(api_errc::not_found, "node not registered", "node_id", "node_id", id);
  if (auto i = st.dirty_health.find(id); i != st.dirty_health.end()) {
    n->health = i->second.health;
    n->has_health = true;
    n->health_at = i->second.at;
    n->last_seen = std::max(n->last_seen, i->second.at);
  }
  return std::move(*n);
}

/// Drops history older than cfg.history_keep, then again in an hour.
void trim_history(self_ptr self) {
  auto& st = self->state;
  if (st.cfg.history_keep.count() <= 0)
    return;
  auto keep = std::chrono::duration_cast<std::chrono::milliseconds>(st.cfg.history_keep);
  uint64_t dropped = 0;
  if (!st.db->trim_history(now_millis() - keep.count(), dropped))
    CF_WARN("persistence", st.db->last_error());
  else if (dropped > 0)
    CF_INFO("persistence", "history: dropped ", dropped, " entries older than ",
            st.cfg.history_keep.count(), " h");
  self->delayed_send(self, std::chrono::hours(1), atom::trim::value);
}

caf::result<model::job_record> load_job(self_ptr self, const std::string& id) {
  commit_now(self);
  for (auto& j : self->state.db->load_jobs())
    if (j.job_id == id)
      return j;
  return make_api_error(api_errc::not_found, "job not found", "job_id", "job_id", id);
}

/// A member's claim of its jobs (store::claim_jobs), the claimed ones loaded.
caf::result<job_claim> claim_jobs(self_ptr self, const std::string& me,
                                  const std::vector<std::string>& live,
                                  const std::vector<std::string>& held) {
  commit_now(self);
  auto& db = *self->state.db;
  std::vector<std::string> ids;
  job_claim out;
  if (!db.claim_jobs(me, live, held, ids, out.waiting, &out.known))
    return make_api_error(db.fenced() ? api_errc::unavailable : api_errc::internal,
                          "cannot claim jobs: " + db.last_error());
  if (ids.empty())
    return out;
  std::sort(ids.begin(), ids.end());
  for (auto& j : db.load_jobs())
    if (std::binary_search(ids.begin(), ids.end(), j.job_id))
      out.claimed.push_back(std::move(j));
  if (out.claimed.size() != ids.size())
    return make_api_error(api_errc::internal,
                          "cannot load the claimed jobs: " + db.last_error());
  return out;
}

caf::result<atom::ok> add_key(self_ptr self, const model::key_entry& k) {
  auto& db = *self->state.db;
  auto outcome = db.add_key(k);
  if (auto err = key_error(outcome, k.id, db.last_error()))
    return err;
  CF_INFO("persistence", "stored a key of ", k.id, " (", model::to_string(k.r), ")");
  return atom::ok::value;
}

caf::result<uint32_t> revoke_keys(self_ptr self, const std::string& id) {
  auto& db = *self->state.db;
  uint32_t removed = 0;
  if (auto err = key_error(db.revoke_keys(id, removed), id, db.last_error()))
    return err;
  CF_INFO("persistence", "revoked ", removed, " keys of ", id);
  return removed;
}

caf::result<model::key_entry> rotate_key(self_ptr self, model::key_entry& fresh,
                                         model::millis old_expire_at) {
  auto& db = *self->state.db;
  if (auto err = key_error(db.rotate_key(fresh, old_expire_at), fresh.id, db.last_error()))
    return err;
  CF_INFO("persistence", "rotated the keys of ", fresh.id);
  return std::move(fresh);
}

/// The newest audit records for the transport, at start.
void send_audit_tail(self_ptr self) {
  auto& st = self->state;
  if (!st.cfg.transport)
    return;
  model::audit_query q;
  q.limit = static_cast<uint32_t>(std::min<uint64_t>(model::audit_max_limit, st.db->audit_keep()));
  model::audit_page page;
  if (!st.db->audit_page(q, page)) {
    CF_ERROR("persistence", "cannot read the audit log: ", st.db->last_error());
    return;
  }
  self->send(st.cfg.transport, atom::audit::value, std::move(page));
}

void schedule_commit(self_ptr self) {
  if (!self->state.commit_scheduled) {
    self->state.commit_scheduled = true;
    // Lands behind every message already queued: those writes join this commit.
    self->send(self, atom::commit::value);
  }
}

}  // namespace

caf::error key_error(store::key_outcome outcome, const std::string& id,
                     const std::string& database_error) {
  switch (outcome) {
    case store::key_outcome::done:
      return {};
    case store::key_outcome::exists:
      return make_api_error(api_errc::conflict,
                            "identity already has a key (revoke or rotate it)", "id", "id", id);
    case store::key_outcome::unknown:
      return make_api_error(api_errc::not_found, "identity has no key", "id", "id", id);
    case store::key_outcome::failed:
      break;
  }
  return make_api_error(api_errc::internal, "database write failed: " + database_error);
}

persistence_actor spawn_persistence(caf::actor_system& sys, std::unique_ptr<store> db,
                                    persistence_config cfg) {
  auto fn = [](self_ptr self, std::shared_ptr<std::unique_ptr<store>> db,
               persistence_config cfg) -> persistence_actor::behavior_type {
    self->state.db = std::move(*db);
    self->state.cfg = cfg;
    if (cfg.detached) {
      // This actor has a thread of its own: let the kernel prefer others.
      if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 5) != 0)
        CF_DEBUG("persistence", "cannot lower the thread's priority");
    }
    // A stop commits what is pending (the latest health above all, which
    // nobody waits for) before the actor goes. An exit with reason `kill`
    // cannot be intercepted: a graceful stop uses another reason.
    self->set_exit_handler([self](caf::exit_msg& msg) {
      if (!msg.reason)
        return;  // a linked actor ended normally: not a stop
      auto& st = self->state;
      CF_INFO("persistence", "stopping (", caf::to_string(msg.reason), "): committing ",
              st.pending.size(), " writes and the health of ", st.dirty_health.size(),
              " nodes");
      commit_now(self);
      if (!st.dirty_health.empty() || !st.pending.empty())
        CF_ERROR("persistence", "stopped with uncommitted writes: ", st.db->last_error());
      self->quit(msg.reason);
    });
    send_audit_tail(self);
    trim_history(self);
    return {
      [self](atom::history, const model::history_query& q) -> caf::result<model::history_page> {
        commit_now(self);  // what was acknowledged is in the history read
        model::history_page page;
        if (!self->state.db->history_page(q, page))
          return make_api_error(api_errc::internal,
                                "database read failed: " + self->state.db->last_error());
        return page;
      },
      [self](atom::trim) { trim_history(self); },
      [self](atom::load) -> loaded_state {
        loaded_state out;
        out.nodes = self->state.db->load_briefs();
        out.jobs = self->state.db->load_jobs();
        CF_INFO("persistence", "loaded nodes=", out.nodes.size(), " jobs=", out.jobs.size(),
                " from ", self->state.db->path());
        return out;
      },
      [self](atom::load, atom::node, const std::string& id) {
        return load_node(self, id);
      },
      [self](atom::load, atom::job, const std::string& id) { return load_job(self, id); },
      [self](atom::load, atom::node) -> loaded_state {
        commit_now(self);
        loaded_state out;
        out.nodes = self->state.db->load_briefs();
        return out;
      },
      [self](atom::write, write_batch& batch) -> caf::result<atom::ok> {
        auto& st = self->state;
        for (auto& op : batch.ops)
          st.pending.emplace_back(std::move(op));
        auto rp = self->make_response_promise<atom::ok>();
        st.waiting.emplace_back(rp);
        schedule_commit(self);
        return rp;
      },
      [self](atom::health, model::put_health& h) {
        auto& st = self->state;
        auto id = h.health.node_id;
        auto& slot = st.dirty_health[id];
        if (h.at >= slot.at)  // never an older report over a newer one
          slot = std::move(h);
        if (++st.absorbed - st.absorbed_told >= st.cfg.absorbed_every)
          tell_absorbed(self);
        if (!st.health_timer) {
          st.health_timer = true;
          self->delayed_send(self, st.cfg.health_flush, atom::tick::value);
        }
      },
      [self](atom::commit) { commit_now(self); },
      [self](atom::ping) -> bool { return self->state.db->ping(); },
      [self](atom::fence, const std::string& member, uint64_t epoch) -> caf::result<atom::ok> {
        commit_now(self);  // what came before belongs to the previous lease
        if (!self->state.db->set_fence(member, epoch))
          return make_api_error(api_errc::internal,
                                "cannot fence the store: " + self->state.db->last_error());
        CF_INFO("persistence", "writes fenced by member ", member, " epoch ", epoch);
        return atom::ok::value;
      },
      [self](atom::claim, const std::string& me, const std::vector<std::string>& live,
             const std::vector<std::string>& held) { return claim_jobs(self, me, live, held); },
      [self](atom::tick) {
        self->state.health_timer = false;
        commit_now(self);
      },
      [self](atom::keys, atom::create, const model::key_entry& k) { return add_key(self, k); },
      [self](atom::keys, atom::revoke, const std::string& id) { return revoke_keys(self, id); },
      [self](atom::keys, atom::rotate, model::key_entry& fresh, model::millis old_expire_at) {
        return rotate_key(self, fresh, old_expire_at);
      },
      [self](atom::keys, atom::list,
             model::millis now) -> caf::result<std::vector<model::key_info>> {
        std::vector<model::key_info> out;
        if (!self->state.db->list_keys(now, out))
          return make_api_error(api_errc::internal,
                                "database read failed: " + self->state.db->last_error());
        return out;
      },
      [self](atom::keys, atom::load, model::millis now) -> caf::result<model::key_table> {
        model::key_table out;
        if (!self->state.db->load_keys(now, out))
          return make_api_error(api_errc::internal,
                                "database read failed: " + self->state.db->last_error());
        return out;
      },
      [self](atom::keys, atom::version) -> caf::result<uint64_t> {
        uint64_t v = 0;
        if (!self->state.db->key_version(v))
          return make_api_error(api_errc::internal,
                                "database read failed: " + self->state.db->last_error());
        return v;
      },
      [self](atom::audit, model::audit_record& r) {
        // Best effort (a refusal nobody waits for): with the next commit, or
        // within the health flush interval; the store's keep limit bounds it.
        auto& st = self->state;
        st.pending.emplace_back(model::put_audit{std::move(r)});
        if (!st.health_timer) {
          st.health_timer = true;
          self->delayed_send(self, st.cfg.health_flush, atom::tick::value);
        }
      },
      [self](atom::audit, const model::audit_query& q) -> caf::result<model::audit_page> {
        model::audit_page page;
        if (!self->state.db->audit_page(q, page))
          return make_api_error(api_errc::internal,
                                "database read failed: " + self->state.db->last_error());
        return page;
      },
      [self](atom::sync) -> atom::ok {
        commit_now(self);
        return atom::ok::value;
      },
      [self](atom::flush) -> atom::ok {
        // Before a stop: commit what is pending and fold the WAL back.
        commit_now(self);
        self->state.db->checkpoint();
        CF_INFO("persistence", "flushed and checkpointed ", self->state.db->path());
        return atom::ok::value;
      },
    };
  };
  auto holder = std::make_shared<std::unique_ptr<store>>(std::move(db));
  if (cfg.detached)
    return sys.spawn<caf::detached>(fn, holder, cfg);
  return sys.spawn(fn, holder, cfg);
}

}  // namespace coapfleet::server
