#include "transport/dtls_client.hpp"

#include <cstring>

namespace coapfleet::transport {

coap_session_t* open_psk_session(coap_context_t* ctx, const coap_address_t& dst,
                                 const common::psk_credentials& c, const coap_address_t* local) {
  if (!coap_dtls_is_supported() || c.empty())
    return nullptr;
  coap_dtls_cpsk_t cpsk;
  std::memset(&cpsk, 0, sizeof cpsk);
  cpsk.version = COAP_DTLS_CPSK_SETUP_VERSION;
  cpsk.psk_info.identity.s = reinterpret_cast<const uint8_t*>(c.identity.data());
  cpsk.psk_info.identity.length = c.identity.size();
  cpsk.psk_info.key.s = reinterpret_cast<const uint8_t*>(c.key.data());
  cpsk.psk_info.key.length = c.key.size();
  return coap_new_client_session_psk2(ctx, local, &dst, COAP_PROTO_DTLS, &cpsk);
}

}  // namespace coapfleet::transport
