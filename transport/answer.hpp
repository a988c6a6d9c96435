// How a transport answers a request that an actor has to work on: once the
// actor has acted (and persisted); a handler never waits. The empty ACK is
// held back, so an answer that comes within piggyback_window_ms goes in the
// ACK (piggybacked: it may then be block-wise), a later one as a separate
// response. Retransmissions get the cached answer. `T` is a runtime.
#pragma once

#include <memory>
#include <string>

#include "model/json.hpp"
#include "actors/replies.hpp"
#include "transport/runtime.hpp"

namespace coapfleet::transport {

/// More requests waiting for actors than this and new ones are shed with
/// 5.03 and Max-Age instead of queueing without bound.
constexpr size_t max_pending_requests = 4096;

inline coap_reply busy_reply() {
  auto r = json_reply(503, model::encode_error("server busy, retry after Max-Age seconds"));
  r.max_age = 2;
  return r;
}

inline coap_reply stopping_reply() {
  auto r = json_reply(503, model::encode_error("server is stopping, retry shortly"));
  r.max_age = 5;
  return r;
}

inline std::string exchange_key(coap_session_t* session, const coap_pdu_t* request) {
  auto p = peer_of(session);
  auto token = coap_pdu_get_token(request);
  std::string key = p.address + "|" + std::to_string(p.port) + "|"
                    + std::to_string(coap_pdu_get_mid(request)) + "|";
  key.append(reinterpret_cast<const char*>(token.s), token.length);
  return key;
}

/// Control-plane requests: answered after the owning actor has acted (and
/// persisted), as a separate response through libcoap's async support.
/// `start` sends the typed request with the id the answer will carry.
template <class T, class Start>
void answer_async(T& t, coap_resource_t* resource, coap_session_t* session,
                  const coap_pdu_t* request, const coap_string_t* query, coap_pdu_t* response,
                  Start&& start) {
  if (coap_async_t* async = coap_find_async(session, coap_pdu_get_token(request))) {
    auto* p = static_cast<pending_request*>(coap_async_get_app_data(async));
    if (p == nullptr || !p->ready)
      return;  // a retransmission while the answer is being prepared
    // libcoap made this a separate (CON) response; still in time, it goes
    // piggybacked in the ACK that was held back, with the request's MID.
    if (p->held_ack && steady_millis() - p->since < piggyback_window_ms) {
      coap_pdu_set_type(response, COAP_MESSAGE_ACK);
      coap_pdu_set_mid(response, p->mid);
    }
    respond(resource, session, request, query, response, p->reply);
    t.remember(p->dedup_key, p->reply);
    if (p->reply.after != after_reply::nothing)
      t.request_stop(p->reply.after == after_reply::restart ? stop_reason::restart
                                                            : stop_reason::shutdown);
    // A retransmission can run this before libcoap's own trigger does (both
    // in one I/O turn); then libcoap runs it once more, after the entry is
    // gone: it must find no pointer to it.
    coap_async_set_app_data(async, nullptr);
    t.pending.erase(p->id);  // libcoap frees the async itself after its trigger
    return;
  }
  if (t.stopping())
    return respond(resource, session, request, query, response, stopping_reply());
  if (t.pending.size() >= max_pending_requests)
    return respond(resource, session, request, query, response, busy_reply());
  auto key = exchange_key(session, request);
  if (const coap_reply* done = t.recall(key)) {
    respond(resource, session, request, query, response, *done);
    return;
  }
  peer from;
  coap_reply refusal;
  if (!t.identify_request(session, request, from, refusal))
    return respond(resource, session, request, query, response, refusal);
  coap_async_t* async = coap_register_async(session, request, 0);
  if (async == nullptr) {
    respond(resource, session, request, query, response,
            json_reply(500, model::encode_error("internal error: cannot defer the answer")));
    return;
  }
  auto p = std::make_unique<pending_request>();
  p->id = t.next_id();
  p->async = async;
  p->since = steady_millis();
  p->mid = coap_pdu_get_mid(request);
  if (coap_pdu_get_type(request) == COAP_MESSAGE_CON) {
    // An empty NON is dropped by libcoap: no empty ACK goes out now.
    coap_pdu_set_type(response, COAP_MESSAGE_NON);
    p->held_ack = true;
  }
  p->dedup_key = std::move(key);
  coap_async_set_app_data(async, p.get());
  auto id = p->id;
  t.pending.emplace(id, std::move(p));
  start(t, id, std::move(from));
}

}  // namespace coapfleet::transport
