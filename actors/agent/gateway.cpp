#include "actors/agent/gateway.hpp"

#include <arpa/inet.h>

#include <chrono>
#include <cstring>

#include "common/log.hpp"
#include "model/json.hpp"

namespace coapfleet::agent {

namespace {

/// An IP literal as 16 bytes (IPv4 as IPv4-mapped IPv6); false if it is none.
bool ip_bytes(const std::string& text, unsigned char (&out)[16]) {
  in_addr v4{};
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    std::memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    std::memcpy(out + 12, &v4, 4);
    return true;
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    std::memcpy(out, &v6, 16);
    return true;
  }
  return false;
}

/// "1.2.3.4:5683", "[::1]:5683".
std::string endpoint_text(const std::string& address, uint16_t port) {
  auto host = address.find(':') != std::string::npos ? "[" + address + "]" : address;
  return host + ":" + std::to_string(port);
}

struct agent_gateway_state {
  static inline const char* name = "agent-gateway";
  agent_gateway_peers peers;
};

using gw_ptr = agent_gateway_actor::stateful_pointer<agent_gateway_state>;

/// The answer to a command from anyone but the agent's server: 4.03 naming
/// the sender, whatever the request said.
coap_reply not_my_server(gw_ptr self, const peer& from, const std::string& what) {
  auto sender = endpoint_text(from.address, from.port);
  auto& server = self->state.peers.commands_from;
  CF_WARN("agent-gateway", "refused ", what, " from ", sender,
          (from.secure ? " (DTLS as " + from.identity + ")" : std::string()),
          ": commands are taken only from the server at ",
          endpoint_text(server.address, server.port),
          (server.identity.empty() ? std::string() : " over DTLS as " + server.identity));
  return error_reply(make_api_error(api_errc::forbidden,
                                    "this agent takes commands only from its own server",
                                    std::string(), "from", sender));
}

}  // namespace

namespace {

/// From the agent's server, or from another member of its cluster.
bool from_a_server(gw_ptr self, const peer& from) {
  auto& p = self->state.peers;
  if (from_my_server(from, p.commands_from))
    return true;
  for (auto& other : p.also_from)
    if (from_my_server(from, other))
      return true;
  return false;
}

}  // namespace

bool from_my_server(const peer& from, const trusted_server& server) {
  if (from.secure || !server.identity.empty())
    return from.secure && !server.identity.empty() && from.identity == server.identity;
  unsigned char a[16], b[16];
  return from.port != 0 && from.port == server.port && ip_bytes(from.address, a)
         && ip_bytes(server.address, b) && std::memcmp(a, b, sizeof a) == 0;
}

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
        if (!from_a_server(self, from))
          return answer(id, not_my_server(self, from, "a notification of job " + job));
        CF_DEBUG("agent-gateway", note.cancel ? "cancel" : "notification", " of job ", job,
                 " from ", endpoint_text(from.address, from.port),
                 (from.secure ? " (DTLS as " + from.identity + ")" : std::string()));
        if (note.cancel) {
          self->request(self->state.peers.installer, std::chrono::seconds(10),
                        atom::cancel::value, note.job_id, note.attempt, note.force)
            .then(
              [=](std::string& state) {
                answer(id, json_reply(204, model::encode_message(
                                             "Cancel accepted",
                                             {{"job_id", job}, {"state", state}})));
              },
              fail(id));
          return;
        }
        self->request(self->state.peers.installer, std::chrono::seconds(10), atom::notify::value,
                      std::move(note))
          .then(
            [=](atom::ok) {
              answer(id, json_reply(204, model::encode_message("Update accepted",
                                                               {{"job_id", job}})));
            },
            fail(id));
      },
      [=](atom::notify, uint64_t id, coap_reply& refusal, peer& from) {
        // Only the server hears what was wrong with its request; anyone
        // else learns nothing about how the body was read.
        if (!from_a_server(self, from))
          return answer(id, not_my_server(self, from, "a notification"));
        answer(id, std::move(refusal));
      },
    };
  };
  return sys.spawn(fn, std::move(peers));
}

}  // namespace coapfleet::agent
