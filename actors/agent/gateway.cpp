#include "actors/agent/gateway.hpp"

#include <chrono>

#include "common/log.hpp"
#include "model/json.hpp"

namespace coapfleet::agent {

namespace {

struct agent_gateway_state {
  static inline const char* name = "agent-gateway";
  agent_gateway_peers peers;
};

using gw_ptr = agent_gateway_actor::stateful_pointer<agent_gateway_state>;

}  // namespace

agent_gateway_actor spawn_agent_gateway(caf::actor_system& sys, agent_gateway_peers peers) {
  auto fn = [](gw_ptr self, agent_gateway_peers peers) -> agent_gateway_actor::behavior_type {
    self->state.peers = std::move(peers);
    auto answer = [self](uint64_t id, coap_reply r) {
      self->send(self->state.peers.transport, atom::reply::value, id, std::move(r));
    };
    auto fail = [answer](uint64_t id) {
      return [answer, id](caf::error& err) { answer(id, error_reply(err)); };
    };
    return {
      [=](atom::info, uint64_t id) {
        auto& p = self->state.peers;
        self->request(p.metrics, std::chrono::seconds(5), atom::info::value)
          .then(
            [=](agent_system_info& info) {
              info.server = self->state.peers.server;
              self->request(self->state.peers.reporter, std::chrono::seconds(5),
                            atom::status::value)
                .then(
                  [=](bool registered) mutable {
                    info.registered = registered;
                    self->request(self->state.peers.installer, std::chrono::seconds(5),
                                  atom::status::value)
                      .then(
                        [=](std::string& job, uint32_t queued) mutable {
                          info.current_job = job;
                          info.queued_jobs = queued;
                          answer(id, json_reply(205, model::encode_agent_system_info(info)));
                        },
                        fail(id));
                  },
                  fail(id));
            },
            fail(id));
      },
      [=](atom::notify, uint64_t id, model::update_notification& note, peer& from) {
        auto job = note.job_id;
        CF_DEBUG("agent-gateway", "notification of job ", job, " from ", from.address);
        self->request(self->state.peers.installer, std::chrono::seconds(10), atom::notify::value,
                      std::move(note))
          .then(
            [=](atom::ok) {
              answer(id, json_reply(204, model::encode_message("Update accepted",
                                                               {{"job_id", job}})));
            },
            fail(id));
      },
    };
  };
  return sys.spawn(fn, std::move(peers));
}

}  // namespace coapfleet::agent
