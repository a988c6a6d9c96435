// Budgets against abuse in the transport: who a plain session is (worked out
// once per session, not per request), per-source token buckets for plain
// requests from outside --plain-trusted (4.29 Too Many Requests with
// Max-Age, RFC 8516), and small datagrams for such sources so that a forged
// source address cannot turn a small request into a large answer (RFC 7252
// section 11.3).
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "common/cidr.hpp"
#include "common/log.hpp"
#include "model/json.hpp"
#include "transport/runtime_internal.hpp"
#include "transport/server_handlers.hpp"
#include "transport/server_impl.hpp"

namespace coapfleet::transport {

namespace {

source_budgets::address address_of(const coap_session_t* s) {
  source_budgets::address a{};
  const coap_address_t* ra = coap_session_get_addr_remote(s);
  if (ra->addr.sa.sa_family == AF_INET) {
    a[10] = a[11] = 0xff;
    std::memcpy(a.data() + 12, &ra->addr.sin.sin_addr, 4);
  } else if (ra->addr.sa.sa_family == AF_INET6) {
    std::memcpy(a.data(), &ra->addr.sin6.sin6_addr, 16);
  }
  return a;
}

}  // namespace

server_transport::impl::plain_peer* server_transport::impl::plain_peer_of(coap_session_t* s) {
  if (auto* known = static_cast<plain_peer*>(coap_session_get_app_data(s)))
    return known;
  auto p = std::make_unique<plain_peer>();
  p->who = runtime::who(s);
  p->address = address_of(s);
  p->budgeted = cfg.budget_trusted || p->who.role != model::role::trusted;
  auto* raw = p.get();
  coap_session_set_app_data(s, raw);
  plain_peers[s] = std::move(p);  // replaces one of a freed session at this address
  return raw;
}

peer server_transport::impl::who(const coap_session_t* session) {
  if (coap_session_get_proto(session) != COAP_PROTO_UDP)
    return runtime::who(session);
  auto* s = const_cast<coap_session_t*>(session);
  return plain_peer_of(s)->who;
}

void server_transport::impl::forget_session(const coap_session_t* session) {
  plain_peers.erase(session);
}

bool server_transport::impl::admit(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                                   const coap_string_t* q, coap_pdu_t* resp) {
  if (coap_session_get_proto(s) != COAP_PROTO_UDP)
    return true;  // DTLS: authenticated (a handshake has a cookie exchange)
  auto* p = plain_peer_of(s);
  if (!p->budgeted || handlers::is_deferred(s, req))
    return true;
  // The later blocks of a listing this endpoint is reading (its block 0 was
  // admitted; each answer is one block, no larger than this source gets).
  coap_block_t b2;
  if (coap_get_block(req, COAP_OPTION_BLOCK2, &b2) && b2.num > 0 && reading_listing(r, s, q))
    return true;
  auto now = steady_millis();
  uint32_t retry_after = 0;
  switch (budgets.admit(p->address, now, retry_after)) {
    case source_budgets::verdict::pass:
      return true;
    case source_budgets::verdict::drop:
      return false;  // an empty ACK at most: never more than the request
    case source_budgets::verdict::refuse: {
      CF_DEBUG("transport", "too many requests from ", p->who.address, ": 4.29, Max-Age ",
               retry_after);
      auto reply = json_reply(429, model::encode_error("too many requests from this address",
                                                       {{"retry_after_seconds",
                                                         std::to_string(retry_after)}}));
      reply.max_age = retry_after;
      respond(r, s, req, q, resp, reply);
      return false;
    }
  }
  return true;
}

void server_transport::impl::budget_session_event(coap_session_t* session, coap_event_t event) {
  switch (event) {
    case COAP_EVENT_SERVER_SESSION_DEL:
      forget_session(session);
      if (dtls_established.erase(session))
        size_idle_budget();
      return;
    case COAP_EVENT_SERVER_SESSION_NEW:
      // From the first ClientHello on: libcoap counts a session in its
      // handshake as idle too, and a fleet handshaking at once must not
      // have its established sessions evicted to make room.
      if (coap_session_get_proto(session) == COAP_PROTO_DTLS
          && dtls_established.insert(session).second)
        size_idle_budget();
      return;
    default:
      return;
  }
}

void server_transport::impl::size_idle_budget() {
  size_t budget = cfg.max_idle_sessions + dtls_established.size();
  if (cfg.dtls_port != 0)
    budget = std::min<size_t>(budget, std::max(cfg.max_idle_sessions, cfg.dtls_idle_sessions)
                                        + cfg.dtls_handshakes);
  coap_context_set_max_idle_sessions(ctx, static_cast<unsigned>(budget));
}

unsigned server_transport::impl::answer_block_size(coap_session_t* session) {
  if (cfg.untrusted_block == 0 || coap_session_get_proto(session) != COAP_PROTO_UDP)
    return 0;
  auto* p = static_cast<plain_peer*>(coap_session_get_app_data(session));
  return p != nullptr && p->budgeted ? cfg.untrusted_block : 0;
}

void server_transport::impl::sweep_budgets(int64_t now) {
  if (now - budgets_swept_at < 10000)
    return;
  budgets_swept_at = now;
  auto before = budgets.tracked();
  budgets.sweep(now);
  if (budgets.refused_total() + budgets.dropped_total() > budgets_logged) {
    CF_WARN("transport", "budgets: ", budgets.refused_total() + budgets.dropped_total() - budgets_logged,
            " requests over their source's budget in the last 10 s (answered 4.29 or dropped); ",
            before, " sources tracked");
    budgets_logged = budgets.refused_total() + budgets.dropped_total();
  }
}

}  // namespace coapfleet::transport
