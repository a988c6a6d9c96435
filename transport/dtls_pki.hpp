// X.509 over DTLS with libcoap 4.3.1 (OpenSSL) where this process is the
// client (the agent towards its server, the CLI, the server notifying a
// node) or an agent's endpoint. libcoap verifies the peer's chain against
// the CA and its validity; the name is checked in the CN callback given
// here, which libcoap calls for each certificate of the chain once it has
// verified it (depth 0: the peer's own).
#pragma once

#include <coap3/coap.h>

#include "common/certificate_files.hpp"

namespace coapfleet::transport {

/// The setup for `f` (whose strings must outlive every session made with
/// it: libcoap keeps the pointers): the peer must show a certificate that
/// chains to f.ca (at most 3 intermediates), is within its validity and is
/// not self-signed; `check` decides about its name. The stale OpenSSL error
/// libcoap leaves after reading the CA file is cleared before a handshake
/// this process accepts (see server_security.cpp).
coap_dtls_pki_t pki_setup(const common::certificate_files& f, coap_dtls_cn_callback_t check,
                          void* arg);

/// A DTLS session to `dst` showing f.cert; null when libcoap has no DTLS or
/// the session cannot open. With libcoap 4.3.1's OpenSSL backend the setup
/// becomes the whole context's (client and server side alike), so a context
/// whose server side is set up otherwise must not be given one.
coap_session_t* open_pki_session(coap_context_t* ctx, const coap_address_t& dst,
                                 const common::certificate_files& f,
                                 coap_dtls_cn_callback_t check, void* arg,
                                 const coap_address_t* local = nullptr);





}  // namespace coapfleet::transport
