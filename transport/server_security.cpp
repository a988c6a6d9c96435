// Who is talking to the server (DESIGN §9): DTLS with pre-shared keys (the
// keys actor's table) and X.509 certificates on --dtls-port, and the plain
// CoAP policy (--plain-trusted, --plain-access). Every request's peer gets
// its identity and role here; handlers and the gateway decide with
// model::authorize.
#include <cstring>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/log.hpp"
#include "model/json.hpp"
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

/// Called by libcoap 4.3.1 (OpenSSL) for each new DTLS session once it has
/// set the session's certificate and verification up, from OpenSSL's
/// client-hello callback. Two fixes:
/// - libcoap reads the --ca file until PEM_read_bio_X509 fails at its end and
///   leaves that error ("no start line") in the thread's OpenSSL error queue.
///   A PKI flight clears the queue as it builds the server's chain; a PSK
///   flight does not, so libcoap's SSL_get_error after SSL_accept sees the
///   stale error, takes the wait for the client's next flight for a failure
///   and drops the session: with --ca, pre-shared keys stopped working. The
///   queue is cleared here.
/// - With verify_peer_cert libcoap asks for a client certificate with
///   SSL_VERIFY_FAIL_IF_NO_PEER_CERT: a client without one would get no
///   session at all. This keeps asking for a certificate and checking one
///   that is shown (same callback), but lets a client that shows none in:
///   such a session has no identity (its requests may carry credentials in
///   option 4209). A certificate that is shown and fails (expired, another
///   CA, a bad name) still ends the handshake.
int on_tls_setup(void* tls_session, coap_dtls_pki_t*) {
  ERR_clear_error();
  auto* ssl = static_cast<SSL*>(tls_session);
  if (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER)
    SSL_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE, SSL_get_verify_callback(ssl));
  return 1;
}

coap_reply credentials_refusal(const std::string& why) {
  return json_reply(401, model::encode_error(why, {{"field", "option 4209"}}));
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
      if (event == COAP_EVENT_DTLS_ERROR)
        CF_INFO("transport", "DTLS with ", peer_of(session).address,
                " failed (a certificate that did not verify: expired, from another CA or "
                "with a bad name; or a wrong key)");
      auto a = attempts.find(session);
      if (a != attempts.end()) {
        if (!a->second.connected) {
          psk_pick[a->second.pick] = a->second.index + 1;  // the other key next time
          if (psk_pick.size() > 65536)
            psk_pick.clear();  // bounded: an attacker's identities do not pile up
        }
        attempts.erase(a);
      }
      // A session that handshakes again shows its certificate again.
      cert_names.erase(session);
      return;
    }
    default:
      return;
  }
}

bool server_transport::impl::setup_dtls(std::string& error) {
  coap_register_event_handler(ctx, on_event);  // sessions come and go (also plain ones)
  // Known to libcoap whether or not there is DTLS: a critical option it does
  // not know it refuses with 4.02 by itself; this server answers it.
  coap_register_option(ctx, model::credentials_option);
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
    pki.check_cert_revocation = 0;  // no CRLs: revoking an identity's key table entry ends its role
    pki.validate_cn_call_back = on_certificate;
    pki.cn_call_back_arg = this;
    pki.additional_tls_setup_call_back = on_tls_setup;
    pki.pki_key.key_type = COAP_PKI_KEY_PEM;
    pki.pki_key.key.pem.public_cert = cfg.cert_file.c_str();
    pki.pki_key.key.pem.private_key = cfg.key_file.c_str();
    pki.pki_key.key.pem.ca_file = cfg.ca_file.empty() ? nullptr : cfg.ca_file.c_str();
    if (!coap_context_set_pki(ctx, &pki)) {
      error = "cannot set up DTLS with the certificate " + cfg.cert_file + " and key "
              + cfg.key_file;
      return false;
    }
    // Nodes with certificates are notified showing this certificate, from a
    // context of its own: libcoap 4.3.1 keeps one PKI setup per context, and
    // this one's (and its pre-shared keys) are the server side's.
    if (!cfg.ca_file.empty())
      set_certificate(common::certificate_files{cfg.cert_file, cfg.key_file, cfg.ca_file}, true);
  }
  coap_address_t a;
  if (!listening_address(cfg.bind, cfg.dtls_port, a, error))
    return false;
  if (!coap_new_endpoint(ctx, &a, COAP_PROTO_DTLS)) {
    error = "cannot listen for DTLS on " + cfg.bind + ":" + std::to_string(cfg.dtls_port)
            + " (address in use?)";
    return false;
  }
  // A fleet handshaking at once (after an outage) must not overflow it.
  enlarge_listen_buffers(cfg.dtls_port);
  return true;
}

void server_transport::impl::identify(const coap_session_t* session, peer& p) {
  if (coap_session_get_proto(session) == COAP_PROTO_DTLS) {
    p.secure = true;
    auto c = cert_names.find(session);
    if (c != cert_names.end()) {
      p.identity = c->second;
      auto r = roles.find(p.identity);
      // A certificate from our CA proves a name; the key table gives the
      // name its role (and revoking the entry takes it away at once). A
      // name the table does not know has no role.
      p.role = r == roles.end() ? model::role::anonymous : r->second;
      if (p.role == model::role::node)
        x509_nodes.insert(p.identity);
      return;
    }
    p.identity = text_of(coap_session_get_psk_identity(session));
    x509_nodes.erase(p.identity);
    auto r = roles.find(p.identity);
    // A revoked key ends what an established session may do at once.
    p.role = r == roles.end() ? model::role::anonymous : r->second;
    return;
  }
  p.role = common::in_any(cfg.plain_trusted, p.address) ? model::role::trusted : cfg.plain_role;
}

bool server_transport::impl::check_credentials(const std::string& user,
                                               const std::string& password,
                                               model::role& out) const {
  // As long for an unknown user as for a known one with a wrong password.
  static const std::string none(2 * model::key_bytes, '0');
  auto i = psk.find(user);
  bool match = false;
  if (i == psk.end() || i->second.empty()) {
    (void)model::same_secret(password, none);
  } else {
    for (auto& key : i->second)
      match |= model::same_secret(password, key);
  }
  auto r = roles.find(user);
  if (!match || r == roles.end())
    return false;
  out = r->second;
  return true;
}

bool server_transport::impl::identify_request(const coap_session_t* session,
                                              const coap_pdu_t* request, peer& out,
                                              coap_reply& refusal) {
  out = who(session);
  coap_opt_iterator_t it;
  coap_opt_t* opt = coap_check_option(request, model::credentials_option, &it);
  if (opt == nullptr)
    return true;  // the common case: one scan of the request's options
  if (!out.secure) {
    // Never checked over plain CoAP: the password would have crossed the
    // network in the clear already, and a check would make it an oracle.
    refusal = credentials_refusal(
      "credentials in option 4209 are taken over coaps:// only (with the server's "
      "certificate); over plain CoAP they are refused, whatever they are");
    return false;
  }
  if (!out.identity.empty()) {
    refusal = credentials_refusal(
      "credentials in option 4209 are for sessions without an identity; this session "
      "already speaks as " + out.identity);
    return false;
  }
  model::credentials c;
  std::string value(reinterpret_cast<const char*>(coap_opt_value(opt)), coap_opt_length(opt));
  if (const char* bad = model::parse_credentials(value, c)) {
    refusal = credentials_refusal(bad);
    return false;
  }
  model::role r = model::role::anonymous;
  if (!check_credentials(c.user, c.password, r)) {
    // The user may be logged; the password never is.
    CF_INFO("transport", "option 4209 from ", out.address, " refused for \"", c.user, "\"");
    refusal = credentials_refusal("credentials in option 4209 not accepted: unknown user or "
                                  "wrong password");
    return false;
  }
  out.identity = std::move(c.user);
  out.role = r;
  return true;
}

bool server_transport::impl::allowed(coap_session_t* session, const coap_pdu_t* request,
                                     model::access a, const std::string& target,
                                     coap_reply& refusal) {
  peer from;
  if (!identify_request(session, request, from, refusal))
    return false;
  auto err = check_access(from, a, target);
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
