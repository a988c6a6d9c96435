// Who is talking to the server (DESIGN §9): DTLS with pre-shared keys (the
// keys actor's table) and X.509 certificates on --dtls-port, and the plain
// CoAP policy (--plain-trusted, --plain-access). Every request's peer gets
// its identity and role here; handlers and the gateway decide with
// model::authorize.
#include <cstring>

#include "common/log.hpp"
#include "transport/server_handlers.hpp"
#include "transport/server_impl.hpp"

namespace coapfleet::transport {

namespace {

std::string text_of(const coap_bin_const_t* b) {
  return b == nullptr ? std::string{} : std::string(reinterpret_cast<const char*>(b->s), b->length);
}

std::string pick_key(const std::string& identity, const coap_session_t* session) {
  return identity + "|" + peer_of(session).address;
}

const coap_bin_const_t* on_psk_identity(coap_bin_const_t* identity, coap_session_t* session,
                                        void* arg) {
  auto& t = *static_cast<server_transport::impl*>(arg);
  auto* key = t.psk_for(text_of(identity), session);
  if (key == nullptr)
    return nullptr;
  // libcoap copies the key before this returns to it.
  static thread_local coap_bin_const_t out;
  out.s = reinterpret_cast<const uint8_t*>(key->data());
  out.length = key->size();
  return &out;
}

int on_certificate(const char* cn, const uint8_t*, size_t, coap_session_t* session,
                   unsigned depth, int validated, void* arg) {
  auto& t = *static_cast<server_transport::impl*>(arg);
  if (!validated) {
    CF_WARN("transport", "refused a certificate (", cn ? cn : "?", ") that did not validate");
    return 0;
  }
  if (depth == 0) {
    std::string name = cn ? cn : "";
    if (!model::valid_identity(name)) {
      CF_WARN("transport", "refused a client certificate: its name \"", name,
              "\" is not a valid node id or operator name");
      return 0;
    }
    t.cert_names[session] = std::move(name);
  }
  return 1;
}

int on_event(coap_session_t* session, const coap_event_t event) {
  if (auto* t = dynamic_cast<server_transport::impl*>(runtime_of(session)))
    t->session_event(session, event);
  return 0;
}

}  // namespace

void server_transport::impl::take_keys(model::key_table table) {
  render_keys_listing(table);
  psk.clear();
  roles.clear();
  for (auto& k : table.keys) {
    psk[k.id].push_back(std::move(k.secret));
    roles.emplace(k.id, k.r);  // the newest key's role
  }
  keys_version = table.version;
  // Never the secrets: how many, for how many identities, which version.
  size_t count = 0;
  for (auto& kv : psk)
    count += kv.second.size();
  CF_INFO("transport", "keys: ", count, " valid keys (version ", table.version, ") of ",
          psk.size(), " identities");
}

const std::string* server_transport::impl::psk_for(const std::string& identity,
                                                   coap_session_t* session) {
  auto i = psk.find(identity);
  if (i == psk.end() || i->second.empty()) {
    CF_INFO("transport", "DTLS handshake from ", peer_of(session).address,
            " refused: no valid key for identity \"", identity.substr(0, 64), "\"");
    return nullptr;
  }
  // During a rotation an identity has two keys and PSK lets the server use
  // only one per handshake: offer the one that worked last from this
  // address (the newest at first), the other after a failed attempt.
  auto pick = pick_key(identity, session);
  size_t index = 0;
  auto p = psk_pick.find(pick);
  if (p != psk_pick.end())
    index = p->second % i->second.size();
  attempts[session] = psk_attempt{std::move(pick), index, false};
  return &i->second[index];
}

void server_transport::impl::session_event(coap_session_t* session, coap_event_t event) {
  budget_session_event(session, event);
  switch (event) {
    case COAP_EVENT_DTLS_CONNECTED: {
      auto a = attempts.find(session);
      if (a != attempts.end()) {
        a->second.connected = true;
        psk_pick[a->second.pick] = a->second.index;
      }
      return;
    }
    case COAP_EVENT_DTLS_ERROR:
    case COAP_EVENT_DTLS_CLOSED:
    case COAP_EVENT_SERVER_SESSION_DEL: {
      auto a = attempts.find(session);
      if (a != attempts.end()) {
        if (!a->second.connected) {
          psk_pick[a->second.pick] = a->second.index + 1;  // the other key next time
          if (psk_pick.size() > 65536)
            psk_pick.clear();  // bounded: an attacker's identities do not pile up
        }
        attempts.erase(a);
      }
      if (event == COAP_EVENT_SERVER_SESSION_DEL)
        cert_names.erase(session);
      return;
    }
    default:
      return;
  }
}

bool server_transport::impl::setup_dtls(std::string& error) {
  coap_register_event_handler(ctx, on_event);  // sessions come and go (also plain ones)
  if (cfg.dtls_port == 0)
    return true;
  if (!coap_dtls_is_supported()) {
    error = "this libcoap has no DTLS support: use --dtls-port 0";
    return false;
  }
  coap_dtls_spsk_t spsk;
  std::memset(&spsk, 0, sizeof spsk);
  spsk.version = COAP_DTLS_SPSK_SETUP_VERSION;
  spsk.validate_id_call_back = on_psk_identity;
  spsk.id_call_back_arg = this;
  static const char hint[] = "coapfleet";
  spsk.psk_info.hint.s = reinterpret_cast<const uint8_t*>(hint);
  spsk.psk_info.hint.length = sizeof hint - 1;
  if (!coap_context_set_psk2(ctx, &spsk)) {
    error = "cannot set up DTLS with pre-shared keys";
    return false;
  }
  if (!cfg.cert_file.empty()) {
    coap_dtls_pki_t pki;
    std::memset(&pki, 0, sizeof pki);
    pki.version = COAP_DTLS_PKI_SETUP_VERSION;
    pki.verify_peer_cert = cfg.ca_file.empty() ? 0 : 1;
    pki.check_common_ca = cfg.ca_file.empty() ? 0 : 1;
    pki.allow_self_signed = 0;
    pki.allow_expired_certs = 0;
    pki.cert_chain_validation = 1;
    pki.cert_chain_verify_depth = 3;
    pki.validate_cn_call_back = on_certificate;
    pki.cn_call_back_arg = this;
    pki.pki_key.key_type = COAP_PKI_KEY_PEM;
    pki.pki_key.key.pem.public_cert = cfg.cert_file.c_str();
    pki.pki_key.key.pem.private_key = cfg.key_file.c_str();
    pki.pki_key.key.pem.ca_file = cfg.ca_file.empty() ? nullptr : cfg.ca_file.c_str();
    if (!coap_context_set_pki(ctx, &pki)) {
      error = "cannot set up DTLS with the certificate " + cfg.cert_file + " and key "
              + cfg.key_file;
      return false;
    }
  }
  coap_address_t a;
  if (!make_address(cfg.bind, cfg.dtls_port, a)) {
    error = cfg.bind + " is not an IPv4 or IPv6 address";
    return false;
  }
  if (!coap_new_endpoint(ctx, &a, COAP_PROTO_DTLS)) {
    error = "cannot listen for DTLS on " + cfg.bind + ":" + std::to_string(cfg.dtls_port)
            + " (address in use?)";
    return false;
  }
  return true;
}

void server_transport::impl::identify(const coap_session_t* session, peer& p) {
  if (coap_session_get_proto(session) == COAP_PROTO_DTLS) {
    p.secure = true;
    auto c = cert_names.find(session);
    if (c != cert_names.end()) {
      p.identity = c->second;
      auto r = roles.find(p.identity);
      // A certificate from our CA names a node unless a key gives it a role.
      p.role = r == roles.end() ? model::role::node : r->second;
      return;
    }
    p.identity = text_of(coap_session_get_psk_identity(session));
    auto r = roles.find(p.identity);
    // A revoked key ends what an established session may do at once.
    p.role = r == roles.end() ? model::role::anonymous : r->second;
    return;
  }
  p.role = common::in_any(cfg.plain_trusted, p.address) ? model::role::trusted : cfg.plain_role;
}

bool server_transport::impl::allowed(coap_session_t* session, model::access a,
                                     const std::string& target, coap_reply& refusal) {
  auto err = check_access(who(session), a, target);
  if (!err)
    return true;
  refusal = error_reply(err);
  return false;
}

std::string server_transport::secure_endpoint_description() const {
  auto& c = impl_->cfg;
  if (c.dtls_port == 0)
    return {};
  auto uri = endpoint_uri(c.bind, c.dtls_port);
  uri.replace(0, 4, "coaps");
  auto paren = uri.find(" (");
  if (paren != std::string::npos)
    uri.erase(paren);
  return uri + (c.cert_file.empty() ? " (DTLS: pre-shared keys)"
                                    : " (DTLS: pre-shared keys, X.509 " + c.cert_file + ")");
}

}  // namespace coapfleet::transport
