#include "transport/server_transport.hpp"

#include "actors/log.hpp"
#include "transport/server_impl.hpp"

namespace coapfleet::transport {

server_transport::impl::impl(caf::actor_system& sys, server_transport_config cfg)
  : runtime(sys), cfg(std::move(cfg)) {
}

void server_transport::impl::send_notification(job_actor job, const std::string& ip,
                                               uint16_t port,
                                               const model::update_notification& note) {
  client_request req;
  req.method = COAP_REQUEST_CODE_POST;
  req.host = ip;
  req.port = port;
  req.path = "updates/available";
  req.payload = model::encode_update_notification(note);
  auto where = ip + ":" + std::to_string(port);
  CF_DEBUG("transport", "notifying ", note.node_id, " at ", where, " of job ", note.job_id);
  send_request(req, [job, node = note.node_id, where](client_response r) {
    if (r.code >= 200 && r.code < 300) {
      caf::anon_send(job, atom::notified::value, node, true, std::string());
      return;
    }
    std::string detail;
    if (r.code == 0) {
      detail = "agent unreachable: " + r.error;
    } else {
      char code[16];
      std::snprintf(code, sizeof code, "%d.%02d", r.code / 100, r.code % 100);
      detail = "agent at " + where + " refused the notification: " + code;
      if (!r.payload.empty())
        detail += " " + r.payload.substr(0, 200);
    }
    caf::anon_send(job, atom::notified::value, node, false, detail);
  });
}

server_transport::server_transport(caf::actor_system& sys, server_transport_config cfg)
  : impl_(std::make_unique<impl>(sys, std::move(cfg))) {
}

server_transport::~server_transport() = default;

transport_actor server_transport::handle() const {
  return caf::actor_cast<transport_actor>(impl_->handle());
}

void server_transport::set_gateway(gateway_actor gateway) {
  impl_->gateway = std::move(gateway);
}

std::string server_transport::endpoint_description() const {
  auto& b = impl_->cfg.bind;
  return "coap://" + (b.find(':') != std::string::npos ? "[" + b + "]" : b) + ":"
         + std::to_string(impl_->cfg.port) + " (udp)";
}

bool server_transport::open(std::string& error) {
  auto& d = *impl_;
  if (!d.open(COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY, error))
    return false;
  coap_context_set_session_timeout(d.ctx, d.cfg.session_timeout_s);
  coap_context_set_max_idle_sessions(d.ctx, d.cfg.max_idle_sessions);
  auto* dp = &d;
  d.set_behavior(caf::behavior{
    [dp](atom::route, std::string& node_id, node_actor& node) {
      dp->routes[std::move(node_id)] = std::move(node);
    },
    [dp](atom::notify, job_actor& job, std::string& ip, uint16_t port,
         model::update_notification& note) { dp->send_notification(job, ip, port, note); },
    [dp](atom::reply, uint64_t id, coap_reply& reply) { dp->complete(id, std::move(reply)); },
    [dp](atom::artifact, std::string& name) { dp->add_artifact_resource(name); },
  });
  if (!d.listen(d.cfg.bind, d.cfg.port, error))
    return false;
  if (!d.register_resources()) {
    error = "cannot register CoAP resources";
    return false;
  }
  return true;
}

stop_reason server_transport::run() {
  return impl_->run();
}

}  // namespace coapfleet::transport
