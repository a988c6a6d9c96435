#include "actors/server/cluster.hpp"

#include <map>

#include "common/log.hpp"
#include "model/json_builder.hpp"

namespace coapfleet::server {

namespace {

struct link {
  member_row row;           ///< as last read from the store
  cluster_actor handle;     ///< while linked
  caf::actor jobs;          ///< its job supervisor, as it introduced itself
  caf::actor registry;      ///< its registry, as it introduced itself
  bool connecting = false;  ///< a connect is under way (until the middleman answers)
  std::chrono::steady_clock::time_point next_try;  ///< no new connect before
};

struct cluster_state {
  static inline const char* name = "cluster";
  cluster_config cfg;
  std::unique_ptr<member_table> table;
  bool fenced = false;
  bool rejoining = false;  ///< joined again; the persistence actor has not taken the fence yet
  std::chrono::steady_clock::time_point last_renewal;
  std::map<std::string, link> members;  ///< the others, by id
  caf::actor jobs;  ///< this member's job supervisor (told the live members)
  caf::actor registry;
  uint32_t nodes = 0, jobs_run = 0;  ///< as last asked (written with the heartbeat)
};

using self_ptr = cluster_actor::stateful_pointer<cluster_state>;

member_view view_of(const member_row& r) {
  member_view v;
  v.member_id = r.member_id;
  v.cluster_endpoint = r.cluster_endpoint;
  v.coap_endpoint = r.coap_endpoint;
  v.epoch = r.epoch;
  v.lease_ms = r.lease_ms;
  v.started_at = r.started_at;
  v.heartbeat_age_ms = r.heartbeat_age_ms;
  v.live = r.live;
  v.nodes = r.nodes;
  v.jobs_run = r.jobs;
  return v;
}

member_view self_view(self_ptr self) {
  auto& st = self->state;
  auto v = view_of(st.cfg.me);
  v.live = !st.fenced;
  v.linked = true;
  v.self = true;
  v.jobs = st.jobs;
  v.registry = st.registry;
  v.nodes = st.nodes;
  v.jobs_run = st.jobs_run;
  v.heartbeat_age_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - st.last_renewal)
                         .count();
  return v;
}

void introduce(self_ptr self, cluster_actor to);
void tell_view(self_ptr self);

/// Links to a member's middleman endpoint (once at a time per endpoint).
void connect(self_ptr self, const std::string& endpoint, const std::string& id) {
  auto& st = self->state;
  std::string host;
  uint16_t port = 0;
  if (!split_endpoint(endpoint, host, port)) {
    CF_WARN("cluster", "cannot link to '", endpoint, "': not HOST:PORT");
    return;
  }
  if (!id.empty()) {
    auto& l = st.members[id];
    l.connecting = true;
    // A member that cannot be reached is tried again every 5 s at most: the
    // middleman's connect blocks its own thread until TCP gives up.
    l.next_try = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  }
  self->request(st.cfg.middleman, caf::infinite, caf::connect_atom::value, host, port)
    .then(
      [=](caf::node_id&, caf::strong_actor_ptr& ptr, std::set<std::string>& ifs) {
        auto& st = self->state;
        if (!id.empty())
          st.members[id].connecting = false;
        if (!ptr) {
          CF_WARN("cluster", "nothing published at ", endpoint);
          return;
        }
        if (ifs != self->system().message_types<cluster_actor>()) {
          CF_ERROR("cluster", "the actor at ", endpoint,
                   " is not a coapfleet member of this version: not linked");
          return;
        }
        auto handle = caf::actor_cast<cluster_actor>(ptr);
        CF_INFO("cluster", "linked to ", id.empty() ? endpoint : id, " at ", endpoint);
        introduce(self, handle);
      },
      [=](caf::error& err) {
        auto& st = self->state;
        if (!id.empty())
          st.members[id].connecting = false;
        CF_DEBUG("cluster", "cannot link to ", endpoint, ": ", self->system().render(err));
      });
}

/// Records a link to a member (monitored) under its id.
void adopt(self_ptr self, const member_view& v, cluster_actor handle) {
  if (v.member_id.empty() || v.member_id == self->state.cfg.me.member_id)
    return;
  auto& l = self->state.members[v.member_id];
  bool new_jobs = v.jobs && l.jobs != v.jobs;
  if (new_jobs)
    l.jobs = v.jobs;
  bool new_registry = v.registry && l.registry != v.registry;
  if (new_registry)
    l.registry = v.registry;
  if (l.handle != handle) {
    l.handle = handle;
    if (l.row.member_id.empty()) {
      l.row.member_id = v.member_id;
      l.row.cluster_endpoint = v.cluster_endpoint;
      l.row.coap_endpoint = v.coap_endpoint;
      l.row.epoch = v.epoch;
      l.row.lease_ms = v.lease_ms;
      l.row.live = v.live;
    }
    self->monitor(handle);
  }
  // Requests for its jobs and nodes can go there now (the supervisor and
  // the registry hear of a member's actors only once the link to it is
  // recorded).
  if (new_jobs || new_registry)
    tell_view(self);
}

/// Tells a member who this one is; its answer lists the members it knows.
void introduce(self_ptr self, cluster_actor to) {
  self->request(to, std::chrono::seconds(5), atom::join::value, self_view(self))
    .then(
      [=](std::vector<member_view>& known) {
        for (auto& v : known) {
          if (v.self)
            adopt(self, v, to);
        }
      },
      [=](caf::error& err) {
        CF_DEBUG("cluster", "a member did not answer our join: ", self->system().render(err));
      });
}

/// Tells the job supervisor and the registry which members are live (and
/// how to reach their actors), or that this member is fenced.
void tell_view(self_ptr self) {
  auto& st = self->state;
  if (st.cfg.me.member_id.empty() || !st.table)
    return;
  cluster_view v;
  v.me = st.cfg.me.member_id;
  v.active = !st.fenced && !st.rejoining;
  if (v.active)
    v.live.push_back(v.me);
  for (auto& [id, l] : st.members) {
    if (!l.row.live)
      continue;
    v.live.push_back(id);
    if (l.handle && (l.jobs || l.registry))
      v.peers.push_back({id, l.jobs, l.registry});
  }
  std::sort(v.live.begin(), v.live.end());
  if (st.registry)
    self->send(caf::actor_cast<registry_actor>(st.registry), atom::cluster::value, v);
  if (st.jobs)
    self->send(caf::actor_cast<job_supervisor_actor>(st.jobs), atom::cluster::value,
               std::move(v));
}

/// Renews the lease (or joins again once it lapsed), reads the members,
/// and links to the live ones without a link.
void heartbeat(self_ptr self) {
  auto& st = self->state;
  auto& me = st.cfg.me;
  if (!st.fenced) {
    switch (st.table->renew(me.member_id, me.epoch, st.nodes, st.jobs_run)) {
      case member_table::renewal::renewed:
        st.last_renewal = std::chrono::steady_clock::now();
        break;
      case member_table::renewal::fenced:
        st.fenced = true;
        CF_ERROR("cluster", "the lease of ", me.member_id, " (epoch ", me.epoch,
                 ") lapsed: this member stops acting until it has joined again");
        break;
      case member_table::renewal::failed:
        if (std::chrono::steady_clock::now() - st.last_renewal
            > std::chrono::milliseconds(me.lease_ms)) {
          st.fenced = true;
          CF_ERROR("cluster", "the store has not answered for longer than the lease (",
                   me.lease_ms, " ms): this member stops acting: ", st.table->last_error());
        } else {
          CF_WARN("cluster", "cannot renew the lease: ", st.table->last_error());
        }
        break;
    }
  }
  if (st.fenced) {
    if (st.rejoining)
      return;  // one join at a time: the persistence actor takes its fence first
    auto again = me;
    if (!st.table->join(again)) {
      CF_DEBUG("cluster", "cannot join again yet: ", st.table->last_error());
      return;
    }
    me = again;
    st.rejoining = true;
    // The persistence actor takes the new epoch before anything is written under it.
    self->request(st.cfg.persistence, caf::infinite, atom::fence::value, me.member_id, me.epoch)
      .then(
        [=](atom::ok) {
          auto& st = self->state;
          st.rejoining = false;
          st.fenced = false;
          st.last_renewal = std::chrono::steady_clock::now();
          CF_INFO("cluster", "joined again as ", st.cfg.me.member_id, " with epoch ",
                  st.cfg.me.epoch);
        },
        [=](caf::error& err) {
          self->state.rejoining = false;  // joins again at the next heartbeat
          CF_ERROR("cluster", "cannot fence the store: ", self->system().render(err));
        });
    return;
  }
  std::vector<member_row> rows;
  if (!st.table->list(rows)) {
    CF_WARN("cluster", "cannot read the members: ", st.table->last_error());
    return;
  }
  for (auto& r : rows) {
    if (r.member_id == me.member_id)
      continue;
    auto& l = st.members[r.member_id];
    bool was_live = l.row.live;
    l.row = r;
    if (r.live != was_live)
      CF_INFO("cluster", "member ", r.member_id, r.live ? " is live" : " is no longer live",
              " (epoch ", r.epoch,
              r.heartbeat_at == 0 ? ", it left"
                                  : ", heartbeat " + std::to_string(r.heartbeat_age_ms) + " ms ago",
              ")");
    if (r.live && !l.handle && !l.connecting && std::chrono::steady_clock::now() >= l.next_try)
      connect(self, r.cluster_endpoint, r.member_id);
    else if (r.live && l.handle && (!l.jobs || !l.registry))
      introduce(self, l.handle);  // it introduced itself before it knew its own actors
                                  // (its answer names them): asked until it does
  }
}

/// One heartbeat: the lease, the members, then the job supervisor's and
/// the registry's view.
void beat(self_ptr self) {
  heartbeat(self);
  tell_view(self);
  // How much this member serves, for the next heartbeat's row.
  auto& st = self->state;
  if (st.registry)
    self->request(caf::actor_cast<registry_actor>(st.registry), std::chrono::seconds(1),
                  atom::count::value, atom::node::value)
      .then([self](uint32_t n) { self->state.nodes = n; }, [](caf::error&) {});
  if (st.jobs)
    self->request(caf::actor_cast<job_supervisor_actor>(st.jobs), std::chrono::seconds(1),
                  atom::count::value)
      .then([self](uint32_t n) { self->state.jobs_run = n; }, [](caf::error&) {});
}

}  // namespace

bool split_endpoint(const std::string& text, std::string& host, uint16_t& port) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return false;
  host = text.substr(0, colon);
  if (host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  auto digits = text.substr(colon + 1);
  if (digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string::npos)
    return false;
  auto n = std::stoul(digits);
  if (n == 0 || n > 65535)
    return false;
  port = static_cast<uint16_t>(n);
  return !host.empty();
}

cluster_actor spawn_cluster(caf::actor_system& sys, cluster_config cfg,
                            std::unique_ptr<member_table> members) {
  auto holder = std::make_shared<std::unique_ptr<member_table>>(std::move(members));
  auto fn = [](self_ptr self, cluster_config cfg,
               std::shared_ptr<std::unique_ptr<member_table>> holder)
    -> cluster_actor::behavior_type {
    auto& st = self->state;
    st.cfg = std::move(cfg);
    st.table = std::move(*holder);
    st.last_renewal = std::chrono::steady_clock::now();
    bool clustered = !st.cfg.me.member_id.empty() && st.table;
    if (clustered) {
      self->set_down_handler([self](caf::down_msg& m) {
        for (auto& [id, l] : self->state.members) {
          if (l.handle && l.handle.address() == m.source) {
            CF_WARN("cluster", "lost the link to member ", id, ": ",
                    self->system().render(m.reason));
            l.handle = nullptr;
            l.jobs = nullptr;
            l.registry = nullptr;
          }
        }
        tell_view(self);
      });
      // A clean stop ends the lease at once: the others take over without
      // waiting for it to lapse.
      self->set_exit_handler([self](caf::exit_msg& msg) {
        auto& st = self->state;
        if (!st.fenced && st.table->leave(st.cfg.me.member_id, st.cfg.me.epoch))
          CF_INFO("cluster", "left the cluster (lease of epoch ", st.cfg.me.epoch, " ended)");
        self->quit(msg.reason);
      });
      for (auto& seed : st.cfg.seeds)
        if (seed != st.cfg.me.cluster_endpoint)
          connect(self, seed, {});
      self->send(self, atom::tick::value);
    }
    return {
      [self](atom::join, member_view& v) -> std::vector<member_view> {
        auto& st = self->state;
        if (auto sender = caf::actor_cast<cluster_actor>(self->current_sender()))
          adopt(self, v, sender);
        std::vector<member_view> out{self_view(self)};
        for (auto& [id, l] : st.members) {
          auto m = view_of(l.row);
          m.linked = static_cast<bool>(l.handle);
          out.push_back(std::move(m));
        }
        CF_DEBUG("cluster", "member ", v.member_id, " (epoch ", v.epoch, ") introduced itself");
        return out;
      },
      [self](atom::get) -> cluster_status {
        auto& st = self->state;
        cluster_status c;
        c.clustered = !st.cfg.me.member_id.empty() && st.table;
        if (!c.clustered)
          return c;
        c.member_id = st.cfg.me.member_id;
        c.epoch = st.cfg.me.epoch;
        c.state = st.fenced ? "fenced" : "active";
        c.tls = st.cfg.tls;
        c.members.push_back(self_view(self));
        for (auto& [id, l] : st.members) {
          if (l.row.member_id.empty())
            continue;  // linked, not yet read from the store
          auto m = view_of(l.row);
          m.linked = static_cast<bool>(l.handle);
          c.members.push_back(std::move(m));
        }
        std::sort(c.members.begin(), c.members.end(),
                  [](const member_view& a, const member_view& b) {
                    return a.member_id < b.member_id;
                  });
        return c;
      },
      [self](atom::observe, caf::actor& jobs, caf::actor& registry) {
        auto& st = self->state;
        st.jobs = std::move(jobs);
        st.registry = std::move(registry);
        // The others learn where this member's jobs and nodes are served.
        for (auto& [id, l] : st.members)
          if (l.handle)
            introduce(self, l.handle);
        tell_view(self);
      },
      [self](atom::tick) {
        beat(self);
        self->delayed_send(self, self->state.cfg.heartbeat, atom::tick::value);
      },
    };
  };
  // The store's calls block (up to their timeout): a thread of its own.
  return sys.spawn<caf::detached>(fn, std::move(cfg), holder);
}

std::string encode_cluster_status(const cluster_status& c) {
  model::json_builder b;
  b.begin_object().member("clustered", c.clustered);
  if (!c.clustered)
    return b.member("state", "single").key("members").begin_array().end_array().end_object().text();
  b.member("member_id", c.member_id)
    .member("epoch", static_cast<long long>(c.epoch))
    .member("state", c.state)
    .member("tls", c.tls)
    .key("members")
    .begin_array();
  for (auto& m : c.members) {
    b.begin_object()
      .member("member_id", m.member_id)
      .member("coap", m.coap_endpoint)
      .member("cluster", m.cluster_endpoint)
      .member("epoch", static_cast<long long>(m.epoch))
      .member("live", m.live)
      .member("linked", m.linked)
      .member("self", m.self)
      .member("heartbeat_age_ms", static_cast<long long>(m.heartbeat_age_ms))
      .member("lease_ms", static_cast<long long>(m.lease_ms))
      .member("nodes", static_cast<long long>(m.nodes))
      .member("jobs", static_cast<long long>(m.jobs_run))
      .end_object();
  }
  return b.end_array().end_object().text();
}

}  // namespace coapfleet::server
