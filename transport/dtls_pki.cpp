#include "transport/dtls_pki.hpp"

#include <cstring>

#include <openssl/err.h>

namespace coapfleet::transport {

namespace {

/// libcoap reads the CA file until PEM_read_bio_X509 fails at its end and
/// leaves that error in the thread's OpenSSL queue; its SSL_get_error after
/// SSL_accept would take it for a failure. Called for each incoming PKI
/// handshake (an agent's endpoint).
int clear_stale_error(void*, coap_dtls_pki_t*) {
  ERR_clear_error();
  return 1;
}

}  // namespace

coap_dtls_pki_t pki_setup(const common::certificate_files& f, coap_dtls_cn_callback_t check,
                          void* arg) {
  coap_dtls_pki_t pki;
  std::memset(&pki, 0, sizeof pki);
  pki.version = COAP_DTLS_PKI_SETUP_VERSION;
  pki.verify_peer_cert = 1;  // a peer without a certificate from the CA gets no session
  pki.check_common_ca = 1;   // and the CA file is loaded as the trust anchor
  pki.allow_self_signed = 0;
  pki.allow_expired_certs = 0;
  pki.cert_chain_validation = 1;
  pki.cert_chain_verify_depth = 3;
  pki.check_cert_revocation = 0;  // no CRLs (as on the server)
  pki.validate_cn_call_back = check;
  pki.cn_call_back_arg = arg;
  pki.additional_tls_setup_call_back = clear_stale_error;
  pki.pki_key.key_type = COAP_PKI_KEY_PEM;
  pki.pki_key.key.pem.public_cert = f.cert.c_str();
  pki.pki_key.key.pem.private_key = f.key.c_str();
  pki.pki_key.key.pem.ca_file = f.ca.c_str();
  return pki;
}

coap_session_t* open_pki_session(coap_context_t* ctx, const coap_address_t& dst,
                                 const common::certificate_files& f,
                                 coap_dtls_cn_callback_t check, void* arg,
                                 const coap_address_t* local) {
  if (!coap_dtls_is_supported() || f.cert.empty())
    return nullptr;
  auto pki = pki_setup(f, check, arg);
  ERR_clear_error();
  auto* s = coap_new_client_session_pki(ctx, local, &dst, COAP_PROTO_DTLS, &pki);
  ERR_clear_error();
  return s;
}

}  // namespace coapfleet::transport
