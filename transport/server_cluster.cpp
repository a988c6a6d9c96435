// GET /cluster: the members as this member sees them, from the membership
// actor (through the gateway; a separate response).
#include "transport/server_handlers.hpp"
#include "transport/server_impl.hpp"

namespace coapfleet::transport {

namespace handlers {

void hnd_get_cluster(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                     const coap_string_t* q, coap_pdu_t* resp) {
  if (is_deferred(s, req))
    return answer_async(r, s, req, q, resp, [](impl&, uint64_t, peer) {});
  auto& t = *server_of(s);
  coap_reply refused;
  if (!t.allowed(s, req, model::access::read_fleet, {}, refused))
    return reply_now(r, s, req, q, resp, refused);
  answer_async(r, s, req, q, resp, [](impl& t, uint64_t id, peer from) {
    caf::anon_send(t.gateway, atom::cluster::value, id, std::move(from));
  });
}

}  // namespace handlers

}  // namespace coapfleet::transport
