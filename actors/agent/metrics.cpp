#include "actors/agent/metrics.hpp"

#include <memory>

#include "common/clock.hpp"
#include "common/log.hpp"

namespace coapfleet::agent {

namespace {

struct metrics_state {
  static inline const char* name = "metrics";
  metrics_config cfg;
  std::unique_ptr<sampler> probe;
  model::health_report latest;
  reporter_actor reporter;
  agent_transport_actor transport;
};

using self_ptr = metrics_actor::stateful_pointer<metrics_state>;

void take_sample(self_ptr self) {
  auto& st = self->state;
  st.latest = st.probe->sample(st.cfg.node_id, now_millis());
  CF_TRACE("metrics", "sample cpu=", st.latest.cpu_percent, " mem=", st.latest.memory_percent,
           " healthy=", st.latest.overall_healthy);
  self->send(st.reporter, atom::health::value, st.latest);
  self->send(st.transport, atom::health::value, st.latest);
}

}  // namespace

metrics_actor spawn_metrics(caf::actor_system& sys, metrics_config cfg, reporter_actor reporter,
                            agent_transport_actor transport) {
  auto fn = [](self_ptr self, metrics_config cfg, reporter_actor reporter,
               agent_transport_actor transport) -> metrics_actor::behavior_type {
    auto& st = self->state;
    st.cfg = std::move(cfg);
    st.probe = std::make_unique<sampler>(st.cfg.sampling);
    st.reporter = std::move(reporter);
    st.transport = std::move(transport);
    take_sample(self);
    self->delayed_send(self, st.cfg.interval, atom::tick::value);
    return {
      [self](atom::get) -> model::health_report { return self->state.latest; },
      [self](atom::info) -> agent_system_info {
        auto facts = collect_system_facts(self->state.cfg.sampling);
        agent_system_info out;
        out.node_id = self->state.cfg.node_id;
        out.hostname = facts.hostname;
        out.os = facts.os;
        out.arch = facts.arch;
        out.kernel = facts.kernel;
        out.cpus = facts.cpus;
        out.memory_total_bytes = facts.memory_total_bytes;
        out.uptime_seconds = facts.uptime_seconds;
        out.agent_version = COAPFLEET_VERSION;
        return out;
      },
      [self](atom::tick) {
        take_sample(self);
        self->delayed_send(self, self->state.cfg.interval, atom::tick::value);
      },
    };
  };
  return sys.spawn(fn, std::move(cfg), std::move(reporter), std::move(transport));
}

}  // namespace coapfleet::agent
