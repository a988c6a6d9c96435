// The runtime with X.509 certificates (DTLS, libcoap 4.3.1 OpenSSL): client
// sessions that show this process's certificate and check the peer's name,
// and an endpoint that admits one peer name only (the agent's: its server).
#include <sys/epoll.h>

#include "common/log.hpp"
#include "transport/dtls_pki.hpp"
#include "transport/runtime_internal.hpp"

namespace coapfleet::transport {

/// libcoap's CN callback for every PKI session of the runtime: called per
/// certificate of the peer's chain once libcoap has verified it against the
/// CA. Depth 0 is the peer's own: its name must be the one expected of that
/// peer (a client session: set_client_certificate's for its address; an
/// incoming session: listen_dtls_pki's).
int check_peer_certificate(const char* cn, const uint8_t* der, size_t length,
                           coap_session_t* session, unsigned depth, int validated, void* arg) {
  auto& rt = *static_cast<runtime*>(arg);
  std::string name = cn ? cn : "";
  const bool client = coap_session_get_type(session) == COAP_SESSION_TYPE_CLIENT;
  auto p = peer_of(session);
  auto from = p.address + ":" + std::to_string(p.port);
  if (!validated) {
    CF_WARN("transport", "DTLS with ", from, ": refused a certificate (\"", name.substr(0, 64),
            "\") that did not verify against ", rt.pki_.ca);
    return 0;
  }
  if (depth > 0)
    return 1;  // a CA of the chain, verified by libcoap
  runtime::pki_peer want;
  if (client) {
    auto i = rt.client_pki_.find(from);
    if (i == rt.client_pki_.end()) {
      CF_WARN("transport", "DTLS with ", from, ": no name is expected there; refused");
      return 0;
    }
    want = i->second;
  } else {
    want = runtime::pki_peer{rt.pki_listen_peer_, true};
  }
  bool ok = want.as_host ? common::certificate_has_name(der, length, want.name)
                         : name == want.name;
  if (!ok) {
    CF_WARN("transport", "DTLS with ", from, ": refused the certificate of \"",
            name.substr(0, 64), "\": it does not name ", want.name,
            client ? " (the peer this process wanted)" : " (the only peer this endpoint takes)");
    return 0;
  }
  if (!client)
    rt.verified_[session] = want.name;
  return 1;
}

int on_pki_session_event(coap_session_t* session, coap_event_t event) {
  if (event == COAP_EVENT_DTLS_CLOSED || event == COAP_EVENT_DTLS_ERROR
      || event == COAP_EVENT_SERVER_SESSION_DEL) {
    if (auto* rt = runtime_of(session))
      rt->verified_.erase(session);
  }
  return 0;
}

void runtime::set_certificate(common::certificate_files files, bool own_context) {
  pki_ = std::move(files);
  pki_own_context_ = own_context;
}

void runtime::set_client_certificate(const std::string& ip, uint16_t port, std::string name,
                                     bool as_host) {
  auto where = ip + ":" + std::to_string(port);
  auto i = client_pki_.find(where);
  if (i != client_pki_.end() && i->second.name == name && i->second.as_host == as_host
      && !client_psk_.count(where))
    return;
  client_psk_.erase(where);
  client_pki_[where] = pki_peer{std::move(name), as_host};
  drop_idle_sessions_to(where);
}

bool runtime::listen_dtls_pki(const std::string& addr, uint16_t port, std::string peer_name,
                              std::string& error) {
  if (!coap_dtls_is_supported()) {
    error = "this libcoap has no DTLS support";
    return false;
  }
  pki_listen_peer_ = std::move(peer_name);
  auto pki = pki_setup(pki_, check_peer_certificate, this);
  if (!coap_context_set_pki(ctx, &pki)) {
    error = "cannot set up DTLS with the certificate " + pki_.cert + " and key " + pki_.key;
    return false;
  }
  coap_register_event_handler(ctx, on_pki_session_event);
  coap_address_t a;
  if (!listening_address(addr, port, a, error))
    return false;
  if (!coap_new_endpoint(ctx, &a, COAP_PROTO_DTLS)) {
    error = "cannot listen for DTLS on " + addr + ":" + std::to_string(port)
            + " (address in use or not local?)";
    return false;
  }
  return true;
}

std::string runtime::verified_name(const coap_session_t* session) const {
  auto i = verified_.find(session);
  return i == verified_.end() ? std::string() : i->second;
}

coap_context_t* runtime::pki_context(coap_context_t* c) {
  if (!pki_own_context_)
    return c;
  if (pki_ctx_)
    return pki_ctx_;
  pki_ctx_ = coap_new_context(nullptr);
  if (!pki_ctx_)
    return nullptr;
  coap_set_app_data(pki_ctx_, this);
  coap_context_set_block_mode(pki_ctx_, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
  coap_register_response_handler(pki_ctx_, on_response);
  coap_register_nack_handler(pki_ctx_, on_nack);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = coap_context_get_coap_fd(pki_ctx_);
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, ev.data.fd, &ev);
  return pki_ctx_;
}

coap_session_t* runtime::open_client_pki(coap_context_t* c, const coap_address_t& dst,
                                         const std::string& where, const coap_address_t* local) {
  if (pki_.cert.empty()) {
    CF_WARN("transport", "no certificate to open a DTLS session to ", where, " with");
    return nullptr;
  }
  auto* pc = pki_context(c);
  return pc ? open_pki_session(pc, dst, pki_, check_peer_certificate, this, local) : nullptr;
}

}  // namespace coapfleet::transport
