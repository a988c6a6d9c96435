#include "transport/agent_transport.hpp"

#include "common/log.hpp"
#include "transport/answer.hpp"

namespace coapfleet::transport {

struct agent_transport::impl : runtime {
  impl(caf::actor_system& sys, agent_transport_config cfg) : runtime(sys), cfg(std::move(cfg)) {
    set_request_timeout(this->cfg.request_timeout);
    // The server notifies a node at the address its requests come from.
    if (this->cfg.bind != "0.0.0.0" && this->cfg.bind != "::")
      set_client_source(this->cfg.bind);
  }
  agent_transport_config cfg;
  size_t max_body(std::string_view) const override { return cfg.max_payload; }
  agent_gateway_actor gateway;
  std::string health_json;  ///< the latest sample, encoded once
  coap_resource_t* health_resource = nullptr;
  bool health_changed = false;
  bool register_resources();
  /// A request over DTLS carries the PSK identity its session was opened
  /// with, or the name its peer's certificate was verified to have (the
  /// gateway decides what that identity may do).
  void identify(const coap_session_t* session, peer& p) override {
    if (coap_session_get_proto(session) != COAP_PROTO_DTLS)
      return;
    p.secure = true;
    if (!cfg.certificate.empty()) {
      p.identity = verified_name(session);
      return;
    }
    if (const coap_bin_const_t* id = coap_session_get_psk_identity(session))
      p.identity.assign(reinterpret_cast<const char*>(id->s), id->length);
  }
};

namespace {

using impl = agent_transport::impl;

impl* agent_of(coap_session_t* s) {
  return static_cast<impl*>(runtime_of(s));
}

void hnd_get_health(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                    const coap_string_t* q, coap_pdu_t* resp) {
  auto& t = *agent_of(s);
  if (t.health_json.empty()) {
    auto busy = json_reply(503, model::encode_error("no health sample yet, retry shortly"));
    busy.max_age = 2;
    return respond(r, s, req, q, resp, busy);
  }
  respond(r, s, req, q, resp, json_reply(205, t.health_json));
}

/// A small answer (one datagram): sent as a separate response once the
/// gateway has asked the metrics, reporter and installer actors.
void hnd_get_system(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                    const coap_string_t* q, coap_pdu_t* resp) {
  auto& t = *agent_of(s);
  answer_async(t, r, s, req, q, resp, [](impl& t, uint64_t id, peer) {
    caf::anon_send(t.gateway, atom::info::value, id);
  });
}

void hnd_post_available(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                        const coap_string_t* q, coap_pdu_t* resp) {
  auto& t = *agent_of(s);
  if (coap_find_async(s, coap_pdu_get_token(req)) != nullptr)
    return answer_async(t, r, s, req, q, resp, [](impl&, uint64_t, peer) {});
  auto body = t.request_body(req);
  // Who may send this is the gateway's decision, and it comes first: a
  // body that cannot be taken goes there too, with the answer it would get.
  auto refer = [&](coap_reply refusal) {
    answer_async(t, r, s, req, q, resp, [&refusal](impl& t, uint64_t id, peer from) {
      caf::anon_send(t.gateway, atom::notify::value, id, std::move(refusal), std::move(from));
    });
  };
  if (body.size() > t.cfg.max_payload)
    return refer(json_reply(413, model::encode_error("payload too large")));
  auto note = model::decode_update_notification(body);
  if (!note.ok())
    return refer(json_reply(400, model::encode_problem(note.err)));
  answer_async(t, r, s, req, q, resp, [&note](impl& t, uint64_t id, peer from) {
    caf::anon_send(t.gateway, atom::notify::value, id, std::move(note.value), std::move(from));
  });
}

void hnd_not_allowed(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                     const coap_string_t* q, coap_pdu_t* resp) {
  auto* allowed = static_cast<const char*>(coap_resource_get_userdata(r));
  respond(r, s, req, q, resp,
          json_reply(405, model::encode_error("method not allowed",
                                              {{"allowed", allowed ? allowed : ""}})));
}

void hnd_unknown(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                 const coap_string_t* q, coap_pdu_t* resp) {
  respond(r, s, req, q, resp, json_reply(404, model::encode_error("no such resource")));
}

/// Every handler as libcoap sees it: a block-wise body is reassembled
/// first (runtime::take_block1), the handler sees it whole.
template <coap_method_handler_t H>
void whole(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req, const coap_string_t* q,
           coap_pdu_t* resp) {
  auto& t = *agent_of(s);
  if (!t.take_block1(r, s, req, q, resp, t.cfg.max_payload))
    return;
  H(r, s, req, q, resp);
  t.release_body();
}

}  // namespace

bool agent_transport::impl::register_resources() {
  struct spec {
    const char* path;
    const char* allowed;
    const char* rt;
    coap_request_t method;
    coap_method_handler_t handler;
  };
  static const spec specs[] = {
    {"health", "GET", "\"coapfleet.agent.health\"", COAP_REQUEST_GET, whole<hnd_get_health>},
    {"system", "GET", "\"coapfleet.agent.system\"", COAP_REQUEST_GET, whole<hnd_get_system>},
    {"updates/available", "POST", "\"coapfleet.agent.updates\"", COAP_REQUEST_POST,
     whole<hnd_post_available>},
  };
  for (auto& sp : specs) {
    auto* r = coap_resource_init(coap_make_str_const(sp.path), 0);
    if (!r)
      return false;
    coap_resource_set_userdata(r, const_cast<char*>(sp.allowed));
    register_methods(r, whole<hnd_not_allowed>, sp.method == COAP_REQUEST_GET ? sp.handler : nullptr,
                     sp.method == COAP_REQUEST_POST ? sp.handler : nullptr);
    coap_add_attr(r, coap_make_str_const("rt"), coap_make_str_const(sp.rt), 0);
    coap_add_attr(r, coap_make_str_const("ct"), coap_make_str_const("50"), 0);
    if (sp.method == COAP_REQUEST_GET && std::string(sp.path) == "health") {
      make_observable(r, whole<hnd_get_health>);  // every new sample notifies
      health_resource = r;
    }
    coap_add_resource(ctx, r);
  }
  auto* unknown = coap_resource_unknown_init2(hnd_unknown, 0);
  register_methods(unknown, whole<hnd_unknown>, nullptr);
  coap_add_resource(ctx, unknown);
  return true;
}

agent_transport::agent_transport(caf::actor_system& sys, agent_transport_config cfg)
  : impl_(std::make_unique<impl>(sys, std::move(cfg))) {
}

agent_transport::~agent_transport() = default;

agent_transport_actor agent_transport::handle() const {
  return caf::actor_cast<agent_transport_actor>(impl_->handle());
}

void agent_transport::set_gateway(agent_gateway_actor gateway) {
  impl_->gateway = std::move(gateway);
}

std::string agent_transport::endpoint_description() const {
  auto uri = endpoint_uri(impl_->cfg.bind, impl_->cfg.port);
  if (!impl_->cfg.credentials.empty())
    uri = "coaps" + uri.substr(4) + " (DTLS, only for the holder of this node's key)";
  else if (!impl_->cfg.certificate.empty())
    uri = "coaps" + uri.substr(4) + " (DTLS, X.509: only for a certificate from "
          + impl_->cfg.certificate.ca + " naming " + impl_->cfg.server_name + ")";
  return uri;
}

bool agent_transport::open(std::string& error) {
  auto& d = *impl_;
  if (!d.open(COAP_BLOCK_USE_LIBCOAP, error))
    return false;
  auto* dp = &d;
  // Typed: the compiler checks every handler against agent_transport_actor.
  d.set_behavior(agent_transport_actor::behavior_type{
    [dp](atom::request, uint64_t id, client_request& req) {
      // The answer goes back to whoever asked.
      auto sender = caf::actor_cast<caf::actor>(dp->current_sender());
      dp->send_request(req, [sender, id](client_response r) {
        caf::anon_send(sender, atom::response::value, id, std::move(r));
      });
    },
    [dp](atom::health, model::health_report& h) {
      dp->health_json = model::encode_health_report(h);
      dp->health_changed = true;
    },
    [dp](atom::reply, uint64_t id, coap_reply& reply) { dp->complete(id, std::move(reply)); },
  }.unbox());
  d.housekeeping = [dp](bool& worked) -> int64_t {
    if (dp->health_changed && dp->health_resource) {
      dp->health_changed = false;
      dp->notify_observers("health");
      worked = true;
    }
    return -1;
  };
  if (!d.cfg.certificate.empty()) {
    // The agent's context has one PKI setup (libcoap 4.3.1): its endpoint
    // and its sessions to the server expect the same peer, the server.
    d.set_certificate(d.cfg.certificate, false);
    d.set_client_certificate(d.cfg.server_host, d.cfg.server_port, d.cfg.server_name, true);
    for (auto& [host, port] : d.cfg.other_servers)
      d.set_client_certificate(host, port, d.cfg.server_name, true);
    if (!d.listen_dtls_pki(d.cfg.bind, d.cfg.port, d.cfg.server_name, error))
      return false;
  } else if (d.cfg.credentials.empty()) {
    if (!d.listen(d.cfg.bind, d.cfg.port, error))
      return false;
  } else {
    d.set_client_credentials(d.cfg.server_host, d.cfg.server_port, d.cfg.credentials);
    for (auto& [host, port] : d.cfg.other_servers)
      d.set_client_credentials(host, port, d.cfg.credentials);
    if (!d.listen_dtls_single(d.cfg.bind, d.cfg.port, d.cfg.credentials, error))
      return false;
  }
  if (!d.register_resources()) {
    error = "cannot register CoAP resources";
    return false;
  }
  return true;
}

stop_reason agent_transport::run() {
  return impl_->run();
}

}  // namespace coapfleet::transport
