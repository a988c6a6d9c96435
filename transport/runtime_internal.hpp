// What the runtime's files share and nobody else needs: the libcoap
// callbacks for client answers, keys of outstanding requests, body releasers.
#pragma once

#include <cstdio>
#include <memory>
#include <string>

#include "transport/runtime.hpp"

namespace coapfleet::transport {

/// libcoap's response and NACK handlers for requests sent by send_request().
coap_response_t on_response(coap_session_t* session, const coap_pdu_t* sent,
                            const coap_pdu_t* received, const coap_mid_t mid);
void on_nack(coap_session_t* session, const coap_pdu_t* sent, const coap_nack_reason_t reason,
             const coap_mid_t mid);

/// Frees a body handed to libcoap's large-data calls.
inline void release_string(coap_session_t*, void* app_ptr) {
  delete static_cast<std::string*>(app_ptr);
}
inline void release_shared(coap_session_t*, void* app_ptr) {
  delete static_cast<std::shared_ptr<const shared_bytes>*>(app_ptr);
}

/// A key unique to a session (or context) and a suffix (token, message id).
inline std::string session_key(const void* s, const std::string& suffix) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p|", s);
  return buf + suffix;
}

inline std::string token_string(coap_bin_const_t t) {
  return std::string(reinterpret_cast<const char*>(t.s), t.length);
}

}  // namespace coapfleet::transport
