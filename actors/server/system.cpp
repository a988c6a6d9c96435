#include "actors/server/system.hpp"

#include <memory>

#include "common/clock.hpp"
#include "common/log.hpp"

namespace coapfleet::server {

namespace {

struct system_state {
  static inline const char* name = "system";
  system_config cfg;
  persistence_actor persistence;
  registry_actor registry;
  job_supervisor_actor jobs;
  double uptime(model::millis now) const { return (now - cfg.started_at) / 1000.0; }
};

using self_ptr = system_actor::stateful_pointer<system_state>;

}  // namespace

system_actor spawn_system(caf::actor_system& sys, system_config cfg,
                          persistence_actor persistence, registry_actor registry,
                          job_supervisor_actor jobs) {
  auto fn = [](self_ptr self, system_config cfg, persistence_actor persistence,
               registry_actor registry,
               job_supervisor_actor jobs) -> system_actor::behavior_type {
    auto& st = self->state;
    st.cfg = cfg;
    st.persistence = std::move(persistence);
    st.registry = std::move(registry);
    st.jobs = std::move(jobs);
    return {
      [self](atom::info) -> model::system_info {
        auto& st = self->state;
        model::system_info out;
        out.timestamp = now_millis();
        out.uptime_seconds = st.uptime(out.timestamp);
        out.version = COAPFLEET_VERSION;
        if (st.cfg.allow_actions)
          out.available_actions = {"restart", "shutdown", "status"};
        else
          out.available_actions = {"status"};
        return out;
      },
      [self](atom::status) -> caf::result<model::system_status> {
        auto& st = self->state;
        auto rp = self->make_response_promise<model::system_status>();
        auto out = std::make_shared<model::system_status>();
        out->database = "disconnected";
        // A ping made now (one that fails or gets no answer leaves
        // "disconnected"), then the counts; a count that fails fails the
        // status rather than showing 0.
        auto counts = [self, rp, out]() mutable {
          self->request(self->state.registry, std::chrono::seconds(5), atom::count::value)
            .then(
              [self, rp, out](uint32_t n) mutable {
                out->nodes = n;
                self->request(self->state.jobs, std::chrono::seconds(5), atom::count::value)
                  .then(
                    [self, rp, out](uint32_t j) mutable {
                      out->jobs = j;
                      out->timestamp = now_millis();
                      out->uptime_seconds = self->state.uptime(out->timestamp);
                      rp.deliver(*out);
                    },
                    [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
              },
              [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
        };
        self->request(st.persistence, std::chrono::seconds(5), atom::ping::value)
          .then(
            [out, counts](bool ok) mutable {
              out->database = ok ? "connected" : "disconnected";
              counts();
            },
            [counts](caf::error&) mutable { counts(); });
        return rp;
      },
      [self](atom::action, model::system_action a,
             const peer& from) -> caf::result<atom::ok> {
        if (a == model::system_action::status)
          return atom::ok::value;
        if (!self->state.cfg.allow_actions)
          return make_api_error(api_errc::forbidden,
                                std::string("system action ") + model::to_string(a)
                                  + " is disabled by configuration (--no-system-actions)",
                                "action");
        CF_WARN("system", model::to_string(a), " requested by ", from.address, ":", from.port);
        return atom::ok::value;
      },
    };
  };
  return sys.spawn(fn, cfg, std::move(persistence), std::move(registry), std::move(jobs));
}

}  // namespace coapfleet::server
