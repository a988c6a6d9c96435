// DTLS client sessions with a pre-shared key (the agent towards its server,
// the CLI towards the server).
#pragma once

#include <coap3/coap.h>

#include "common/key_file.hpp"

namespace coapfleet::transport {

/// A DTLS session to `dst` speaking as `c.identity` with `c.key` (libcoap
/// copies both); null when libcoap has no DTLS or the session cannot open.
coap_session_t* open_psk_session(coap_context_t* ctx, const coap_address_t& dst,
                                 const common::psk_credentials& c,
                                 const coap_address_t* local = nullptr);

}  // namespace coapfleet::transport
