#include "actors/agent/reporter.hpp"

#include <random>
#include <unordered_map>

#include "actors/agent/journal.hpp"
#include "actors/agent/server_list.hpp"
#include "common/log.hpp"
#include "model/json.hpp"

namespace coapfleet::agent {

namespace {

enum class call : uint8_t { enroll, health, report };

struct reporter_state {
  static inline const char* name = "reporter";
  reporter_config cfg;
  server_list servers;  ///< cfg's servers, the one spoken to first
  agent_transport_actor transport;
  bool registered = false;
  bool enrolling = false;
  bool health_inflight = false;
  bool health_paused = false;  ///< the server asked to wait (5.03 + Max-Age)
  bool report_inflight = false;
  bool have_health = false;
  model::health_report pending_health;  ///< the newest sample not yet sent
  std::deque<model::update_report> outbox;
  /// Calls in flight: what, and to which server (failover counts the
  /// current one's failures only).
  std::unordered_map<uint64_t, std::pair<call, std::string>> calls;
  uint64_t next_id = 1;
  bool retry_scheduled = false;
  std::chrono::milliseconds backoff{0};
  bool server_lost = false;  ///< for logging transitions once
  std::mt19937 rng{std::random_device{}()};
};

using self_ptr = reporter_actor::stateful_pointer<reporter_state>;

void send_call(self_ptr self, call kind, request_method method, const char* path, std::string body) {
  auto& st = self->state;
  client_request req;
  req.method = method;
  req.host = st.servers.host();
  req.port = st.servers.port();
  req.path = path;
  req.payload = std::move(body);
  auto id = st.next_id++;
  st.calls[id] = {kind, st.servers.current()};
  self->send(st.transport, atom::request::value, id, std::move(req));
}

/// Schedules one retry, each later than the one before (up to the maximum),
/// with ±25% jitter so a fleet does not return in lockstep.
void schedule_retry(self_ptr self) {
  auto& st = self->state;
  if (st.retry_scheduled)
    return;
  st.retry_scheduled = true;
  st.backoff = st.backoff.count() == 0 ? st.cfg.backoff_min
                                       : std::min(st.backoff * 2, st.cfg.backoff_max);
  std::uniform_real_distribution<double> jitter(0.75, 1.25);
  auto delay = std::chrono::milliseconds(
    static_cast<int64_t>(static_cast<double>(st.backoff.count()) * jitter(st.rng)));
  self->delayed_send(self, delay, atom::tick::value);
}

void server_unreachable(self_ptr self, const std::string& why) {
  auto& st = self->state;
  // Fail over: the next server in turn, registered with before anything else.
  if (st.servers.fail_over_from(st.servers.current(), "reporter", "unreachable: " + why)) {
    st.registered = false;
    st.server_lost = false;
    st.backoff = std::chrono::milliseconds{0};
    return;
  }
  if (!st.server_lost)
    CF_WARN("reporter", "server ", st.servers.current(), " unreachable: ", why,
            "; retrying with backoff");
  st.server_lost = true;
}

void server_back(self_ptr self) {
  auto& st = self->state;
  if (st.server_lost)
    CF_INFO("reporter", "server ", st.servers.current(), " answers again");
  st.server_lost = false;
  st.backoff = std::chrono::milliseconds{0};
}

void enroll(self_ptr self) {
  auto& st = self->state;
  if (st.enrolling)
    return;
  st.enrolling = true;
  send_call(self, call::enroll, request_method::post, "nodes",
            model::encode_node_registration(st.cfg.registration));
}

void send_health(self_ptr self) {
  auto& st = self->state;
  if (!st.registered || st.health_inflight || st.health_paused || !st.have_health)
    return;
  st.health_inflight = true;
  st.have_health = false;
  send_call(self, call::health, request_method::put, "health", model::encode_health_report(st.pending_health));
}

void deliver(self_ptr self) {
  auto& st = self->state;
  if (!st.registered || st.report_inflight || st.outbox.empty())
    return;
  st.report_inflight = true;
  send_call(self, call::report, request_method::post, "updates", model::encode_update_report(st.outbox.front()));
}

void save(self_ptr self) {
  std::string err;
  if (!save_outbox(self->state.cfg.outbox_path, self->state.outbox, err))
    CF_ERROR("reporter", err);
}

void on_enrolled(self_ptr self, const client_response& r) {
  auto& st = self->state;
  st.enrolling = false;
  if (r.code == 201 || r.code == 204) {
    server_back(self);
    if (!st.registered)
      CF_INFO("reporter", "registered as ", st.cfg.registration.node_id, " with ",
              st.servers.current());
    st.registered = true;
    send_health(self);
    deliver(self);
    return;
  }
  if (r.code == 0)
    server_unreachable(self, r.error);
  else
    CF_WARN("reporter", "registration refused: ", r.code / 100, ".", r.code % 100, " ",
            r.payload);
  schedule_retry(self);
}

void on_health(self_ptr self, const client_response& r) {
  auto& st = self->state;
  st.health_inflight = false;
  if (r.code == 204 || r.code == 201) {
    server_back(self);
  } else if (r.code == 404) {
    // The server does not know us (a new database, a failover): register again.
    CF_INFO("reporter", "server does not know this node; registering again");
    st.registered = false;
    enroll(self);
    return;
  } else if (r.code == 0) {
    server_unreachable(self, r.error);
    st.registered = false;  // re-register when it answers again
    schedule_retry(self);
    return;
  } else if (r.code == 503) {
    // Overloaded: the refused sample (or a newer one taken meanwhile) goes
    // once the server's Max-Age has passed (RFC 7252 5.9.3.4; 60 s when it
    // gave none, the option's default).
    auto wait = std::chrono::seconds(r.max_age >= 0 ? std::min<int64_t>(r.max_age, 3600) : 60);
    CF_DEBUG("reporter", "server busy: next health report in ", wait.count(), " s");
    st.have_health = true;
    st.health_paused = true;
    self->delayed_send(self, wait, atom::resume::value);
    return;
  } else {
    CF_WARN("reporter", "health report refused: ", r.code / 100, ".", r.code % 100, " ",
            r.payload);
  }
  send_health(self);  // a newer sample may be waiting
}

void on_report(self_ptr self, const client_response& r) {
  auto& st = self->state;
  st.report_inflight = false;
  if (st.outbox.empty())
    return;
  auto& head = st.outbox.front();
  if (r.code / 100 == 2 || r.code == 400 || r.code == 404) {
    if (r.code / 100 == 2)
      CF_DEBUG("reporter", "job ", head.job_id, ": reported ", to_string(head.state));
    else  // can never succeed (unknown job, illegal step): do not block the queue
      CF_WARN("reporter", "job ", head.job_id, ": server refused report ",
              to_string(head.state), ": ", r.code / 100, ".0", r.code % 100, " ", r.payload);
    server_back(self);
    st.outbox.pop_front();
    save(self);
    deliver(self);
    return;
  }
  if (r.code == 0)
    server_unreachable(self, r.error);
  schedule_retry(self);
}

}  // namespace

reporter_actor spawn_reporter(caf::actor_system& sys, reporter_config cfg,
                              agent_transport_actor transport) {
  auto fn = [](self_ptr self, reporter_config cfg,
               agent_transport_actor transport) -> reporter_actor::behavior_type {
    auto& st = self->state;
    st.servers = server_list(cfg.server_host, cfg.server_port, cfg.other_servers);
    st.cfg = std::move(cfg);
    st.transport = std::move(transport);
    std::string err;
    st.outbox = load_outbox(st.cfg.outbox_path, err);
    if (!err.empty())
      CF_WARN("reporter", err);
    if (!st.outbox.empty())
      CF_INFO("reporter", st.outbox.size(), " undelivered reports from before the restart");
    enroll(self);
    return {
      [self](atom::health, model::health_report& h) {
        auto& st = self->state;
        st.pending_health = std::move(h);
        st.have_health = true;
        send_health(self);
      },
      [self](atom::report, model::update_report& r) {
        auto& st = self->state;
        if (r.inventory_given) {  // a re-registration tells it too
          st.cfg.registration.inventory = r.inventory;
          st.cfg.registration.inventory_given = true;
        }
        st.outbox.push_back(std::move(r));
        save(self);
        deliver(self);
      },
      [self](atom::status) -> bool { return self->state.registered; },
      [self](atom::response, uint64_t id, client_response& r) {
        auto& st = self->state;
        auto i = st.calls.find(id);
        if (i == st.calls.end())
          return;
        auto [kind, to] = i->second;
        st.calls.erase(i);
        if (r.code == 0 && to != st.servers.current()) {
          // An answer lost by a server already left behind: the call goes
          // again to the current one.
          if (kind == call::enroll)
            st.enrolling = false;
          else if (kind == call::health)
            st.health_inflight = false;
          else
            st.report_inflight = false;
          schedule_retry(self);
          return;
        }
        switch (kind) {
          case call::enroll: on_enrolled(self, r); break;
          case call::health: on_health(self, r); break;
          case call::report: on_report(self, r); break;
        }
      },
      [self](atom::resume) {
        self->state.health_paused = false;
        send_health(self);
      },
      [self](atom::tick) {
        auto& st = self->state;
        st.retry_scheduled = false;
        if (!st.registered)
          enroll(self);
        else
          deliver(self);
      },
    };
  };
  return sys.spawn(fn, std::move(cfg), std::move(transport));
}

}  // namespace coapfleet::agent
