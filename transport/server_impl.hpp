// Internal state of the server transport, shared by the loop
// (server_transport.cpp) and the resource handlers (server_resources.cpp).
#pragma once

#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include <caf/actor_companion.hpp>
#include <caf/scoped_execution_unit.hpp>
#include <coap3/coap.h>

#include "transport/server_transport.hpp"

namespace coapfleet::transport {

/// A control-plane request waiting for the gateway's answer (libcoap async).
struct pending_request {
  uint64_t id = 0;
  coap_async_t* async = nullptr;
  bool ready = false;
  coap_reply reply;
  std::string dedup_key;
};

/// A notification sent to an agent, waiting for its answer.
struct outgoing_request {
  job_actor job;
  std::string node_id;
  std::string where;  ///< "ip:port" for messages
};

struct server_transport::impl {
  impl(caf::actor_system& sys, server_transport_config cfg);
  ~impl();

  caf::actor_system& sys;
  server_transport_config cfg;
  coap_context_t* ctx = nullptr;
  int event_fd = -1;
  int signal_fd = -1;
  int epoll_fd = -1;

  // -- bridge to the actors (actor_companion) --
  caf::strong_actor_ptr companion;
  caf::scoped_execution_unit unit;
  std::mutex mailbox_mutex;  // the only lock: between CAF threads and this loop
  std::deque<caf::mailbox_element_ptr> mailbox;
  caf::actor_companion* self();
  void drain_mailbox();

  gateway_actor gateway;
  std::unordered_map<std::string, node_actor> routes;  ///< node_id → node actor

  // -- control-plane requests in flight --
  uint64_t next_id = 1;
  std::unordered_map<uint64_t, std::unique_ptr<pending_request>> pending;
  void complete(uint64_t id, coap_reply reply);
  /// Serves the actor mailbox until `p` is ready or `timeout_ms` passed.
  bool wait_for(const pending_request& p, unsigned timeout_ms);

  // -- answers already sent, replayed for retransmitted requests --
  struct cached_answer {
    coap_reply reply;
    int64_t at = 0;
  };
  std::unordered_map<std::string, cached_answer> answered;
  std::deque<std::string> answered_order;
  void remember(const std::string& key, const coap_reply& reply);
  const coap_reply* recall(const std::string& key);

  // -- notifications to agents --
  std::unordered_map<std::string, outgoing_request> outgoing;       ///< session|token
  std::unordered_map<std::string, std::string> outgoing_by_mid;     ///< session|mid → key
  std::unordered_map<std::string, coap_session_t*> client_sessions; ///< ip:port
  void send_notification(job_actor job, const std::string& ip, uint16_t port,
                         const model::update_notification& note);
  void finish_outgoing(const std::string& key, bool ok, std::string detail);

  // -- stopping --
  bool stopping = false;
  stop_reason reason = stop_reason::signal;
  int64_t stop_deadline = 0;
  int64_t stop_started = 0;
  void request_stop(stop_reason why);

  bool register_resources();
};

/// Resource handlers get the transport through the context's app data.
server_transport::impl* transport_of(coap_session_t* session);

/// "1.2.3.4" / "::1" and the port of the session's peer.
peer peer_of(const coap_session_t* session);

/// Fills `response` with a reply (code, content format, Max-Age, body;
/// block-wise when the body is larger than one datagram).
void respond(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
             const coap_string_t* query, coap_pdu_t* response, const coap_reply& reply);

int64_t steady_millis();

}  // namespace coapfleet::transport
