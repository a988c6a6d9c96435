#include "transport/server_transport.hpp"

#include <algorithm>
#include <malloc.h>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "model/json.hpp"
#include "transport/answer.hpp"
#include "transport/server_impl.hpp"

namespace coapfleet::transport {

server_transport::impl::impl(caf::actor_system& sys, server_transport_config cfg)
  : runtime(sys), cfg(std::move(cfg)), budgets(this->cfg.budget), shed(this->cfg.shedding) {
  started_at = this->cfg.started_at != 0 ? this->cfg.started_at : now_millis();
  etag_salt = static_cast<uint64_t>(started_at) * 0x9E3779B97F4A7C15ull;
  shed_reply = json_reply(503, model::encode_error("server overloaded: health reports arrive "
                                                   "faster than they can be stored; retry "
                                                   "after Max-Age seconds"));
  shed_reply.max_age = this->cfg.shedding.max_age_s;
}

void server_transport::impl::send_notification(job_actor job, const std::string& ip,
                                               uint16_t port,
                                               const model::update_notification& note) {
  client_request req;
  req.method = request_method::post;
  req.host = ip;
  req.port = port;
  req.path = "updates/available";
  req.payload = model::encode_update_notification(note);
  auto where = ip + ":" + std::to_string(port);
  // A node with a key is notified over DTLS with that key (its agent takes
  // commands from nobody else); with two keys during a rotation, the one
  // its agent last connected with.
  auto k = psk.find(note.node_id);
  if (x509_nodes.count(note.node_id) && !cfg.ca_file.empty()) {
    // Its requests come with its certificate: its agent takes commands only
    // from a certificate of our CA naming its server, and must show one
    // naming this node.
    set_client_certificate(ip, port, note.node_id, false);
    where = "coaps://" + where + " (X.509)";
  } else if (k != psk.end() && !k->second.empty()) {
    size_t index = 0;
    auto p = psk_pick.find(note.node_id + "|" + ip);
    if (p != psk_pick.end())
      index = p->second % k->second.size();
    set_client_credentials(ip, port, common::psk_credentials{note.node_id, k->second[index]});
    where = "coaps://" + where;
  }
  CF_DEBUG("transport", note.cancel ? "cancelling job " : "notifying ", note.node_id, " at ",
           where, note.cancel ? " of job " : " of job ", note.job_id);
  send_request(req, [job, node = note.node_id, where, cancel = note.cancel](client_response r) {
    auto tell = [&](bool ok, std::string detail) {
      if (cancel)
        caf::anon_send(job, atom::cancel::value, node, ok, std::move(detail));
      else
        caf::anon_send(job, atom::notified::value, node, ok, std::move(detail));
    };
    if (r.code >= 200 && r.code < 300)
      return tell(true, {});
    std::string detail;
    if (r.code == 0) {
      detail = "agent unreachable: " + r.error;
    } else {
      char code[16];
      std::snprintf(code, sizeof code, "%d.%02d", r.code / 100, r.code % 100);
      detail = "agent at " + where + " refused the " + (cancel ? "cancel: " : "notification: ")
               + code;
      if (!r.payload.empty())
        detail += " " + r.payload.substr(0, 200);
    }
    tell(false, std::move(detail));
  });
}

int64_t server_transport::impl::do_housekeeping(bool& worked) {
  sweep_budgets(steady_millis());
  sweep_listings(steady_millis());
  for (auto& name : artifacts_to_add)
    add_artifact_resource(name);
  artifacts_to_add.clear();
  for (auto& path : to_delete) {
    if (reps.count(path) == 0)
      continue;
    // As RFC 7641 §3.2 ends them. The last observer's end may forget the
    // representation itself (unobserved): it is erased by its path, not
    // by an iterator taken before.
    end_observations(path, 404);
    reps.erase(path);
    worked = true;
  }
  to_delete.clear();
  for (auto& path : to_notify) {
    if (reps.count(path) && observed(path)) {
      notify_observers(path);
      worked = true;
    }
  }
  to_notify.clear();
  // Give memory freed after a burst back to the system now and then.
  auto now_trim = steady_millis();
  if (now_trim - last_trim > 30000) {
    last_trim = now_trim;
    malloc_trim(0);
  }
  // Only the representations with a refresh scheduled: a fleet has many,
  // and this runs on every turn of the loop.
  int64_t next = -1;
  auto now = steady_millis();
  std::vector<std::string> later;
  for (auto& path : due_paths) {
    auto i = reps.find(path);
    if (i == reps.end() || i->second.due < 0)
      continue;
    auto& rep = i->second;
    if (rep.due <= now) {
      refresh(rep);
    } else {
      next = next < 0 ? rep.due - now : std::min(next, rep.due - now);
      later.push_back(path);
    }
  }
  due_paths.swap(later);
  if (worked)
    next = 0;  // notifications queued: the next turn sends them
  return next;
}

bool server_transport::impl::shed_health() {
  // A reading every 32 reports, or when the last one is 5 ms old.
  auto now = steady_millis();
  if ((++health_seen & 31) == 0 || now - busy_read_at >= 5) {
    queue = receive_queue_state();
    shed.update_socket(busy_ms(), queue.fill, now - busy_read_at);
    busy_read_at = now;
  }
  shed.update_backlog(backlog());
  bool refuse = shed.refuse();
  // A line when shedding starts, and at most one per 10 s while it goes on.
  if (refuse && now - shed_logged_at >= 10000) {
    CF_WARN("transport", "overloaded: refusing ", static_cast<int>(shed.share() * 100),
            "% of PUT /health with 5.03 (Max-Age ", shed.config().max_age_s,
            " s); the socket has not been empty for ", busy_ms(), " ms and holds ~",
            static_cast<int>(queue.fill * 100), "% of its buffer, ", backlog(),
            " reports are on their way to the database",
            shed.backlog_full() ? " (too many: refusing all)" : "", "; since the last line ",
            shed.refused_total() - shed_logged_refused, " refused, ",
            shed.admitted_total() - shed_logged_admitted, " admitted; ", queue.drops,
            " datagrams dropped by the kernel since start");
    shed_logged_at = now;
    shed_logged_refused = shed.refused_total();
    shed_logged_admitted = shed.admitted_total();
  }
  return refuse;
}

server_transport::server_transport(caf::actor_system& sys, server_transport_config cfg)
  : impl_(std::make_unique<impl>(sys, std::move(cfg))) {
}

server_transport::~server_transport() = default;

transport_actor server_transport::handle() const {
  return caf::actor_cast<transport_actor>(impl_->handle());
}

void server_transport::set_reader(reader_actor reader) { impl_->reader = std::move(reader); }

void server_transport::set_registry(registry_actor registry) {
  impl_->registry = std::move(registry);
}

void server_transport::set_gateway(gateway_actor gateway) {
  auto& d = *impl_;
  d.gateway = std::move(gateway);
  // The fleet-wide representations exist from the start.
  for (auto k : {resource_kind::health, resource_kind::updates,
                 resource_kind::system, resource_kind::artifacts})
    d.keep_fresh(resource{k, {}});
}

std::string server_transport::endpoint_description() const {
  return endpoint_uri(impl_->cfg.bind, impl_->cfg.port) + ", receive buffer "
         + std::to_string(impl_->receive_queue_state().buffer / 1024) + " KiB";
}

bool server_transport::open(std::string& error) {
  auto& d = *impl_;
  if (!d.open(COAP_BLOCK_USE_LIBCOAP, error))
    return false;
  coap_context_set_session_timeout(d.ctx, d.cfg.session_timeout_s);
  // libcoap has one idle budget per context, counted per endpoint: it
  // grows with the DTLS sessions established (see size_idle_budget()).
  coap_context_set_max_idle_sessions(d.ctx, d.cfg.max_idle_sessions);
  // Beyond this many handshakes at once libcoap drops the oldest, whose
  // client then retries after a second or more: a fleet coming back after
  // an outage would thrash. A handshake session exists only after the
  // client returned the server's cookie (no spoofed source gets one).
  coap_context_set_max_handshake_sessions(d.ctx, d.cfg.dtls_handshakes);
  auto* dp = &d;
  // Typed: the compiler checks every handler against transport_actor.
  d.set_behavior(transport_actor::behavior_type{
    [dp](atom::route, std::string& node_id, node_actor& node) {
      dp->routes[std::move(node_id)] = std::move(node);
    },
    [dp](atom::unroute, std::string& node_id) {
      // Every report routed to the actor so far is in its mailbox; the
      // registry closes it after this, and later reports go to the registry.
      dp->routes.erase(node_id);
      if (dp->routes.empty() || dp->routes.bucket_count() > 4 * dp->routes.size() + 1024)
        dp->routes.rehash(0);  // a burst's table shrinks with it
      caf::anon_send(dp->registry, atom::unroute::value, std::move(node_id));
    },
    [dp](atom::changes, uint64_t id, node_changes& c) {
      caf::anon_send(dp->reader, atom::changes::value, id, std::move(c), now_millis());
    },
    [dp](atom::health, uint64_t id, coap_reply& reply) {
      if (reply.code == 204)
        ++dp->health_forwarded;  // handed to the node's actor
      dp->complete(id, std::move(reply));
    },
    [dp](atom::notify, job_actor& job, std::string& ip, uint16_t port,
         model::update_notification& note) { dp->send_notification(job, ip, port, note); },
    [dp](atom::reply, uint64_t id, coap_reply& reply) {
      int64_t asked_at = 0;
      if (auto* rep = dp->refresh_of(id, asked_at)) {
        if (reply.code >= 500)
          return dp->render_failed(*rep, std::move(reply));
        if (reply.shared_body == nullptr && !reply.payload.empty()) {
          reply.shared_body = std::make_shared<shared_string>(std::move(reply.payload));
          reply.payload.clear();
        }
        rep->reply = std::move(reply);
        dp->refreshed(*rep, asked_at);
        return;
      }
      dp->deliver(id, std::move(reply));
    },
    [dp](atom::reply, uint64_t id, model::fleet_health& h) {
      int64_t asked_at = 0;
      if (auto* rep = dp->refresh_of(id, asked_at)) {
        rep->health = std::move(h);
        dp->refreshed(*rep, asked_at);
      }
    },
    [dp](atom::reply, uint64_t id, model::system_info& s) {
      int64_t asked_at = 0;
      if (auto* rep = dp->refresh_of(id, asked_at)) {
        rep->system = std::move(s);
        dp->refreshed(*rep, asked_at);
      }
    },
    [dp](atom::listing, uint64_t id, coap_reply& reply) { dp->complete(id, std::move(reply)); },
    [dp](atom::listing, uint64_t id, listing_chunk& c) { dp->listing_opened(id, std::move(c)); },
    [dp](atom::more, listing_chunk& c) { dp->listing_more(std::move(c)); },
    [dp](atom::remove, std::string& name) { dp->artifacts.erase(name); },
    [dp](atom::artifact, artifact_blob& blob) {
      dp->artifacts[blob.info.name] = impl::served_artifact{blob.bytes, blob.info.etag()};
      dp->artifacts_to_add.push_back(blob.info.name);
    },
    [dp](atom::route, std::string& job_id, job_actor&) {
      // A job that runs here: its status is kept fresh. A control change:
      // the answer that created the job leaves once its status can be read.
      resource r{resource_kind::job_status, job_id};
      dp->find(r, true)->warm = true;
      dp->changed(r, urgency::control);
    },
    [dp](atom::forget, std::string& job_id) {
      dp->forget(resource{resource_kind::job_status, job_id});
    },
    [dp](atom::forget, resource& r) { dp->forget(r); },
    [dp](atom::changed, resource& r, urgency u) { dp->changed(r, u); },
    [dp](atom::keys, model::key_table& keys) { dp->take_keys(std::move(keys)); },
    [dp](atom::audit, model::audit_page& page) { dp->take_audit(std::move(page)); },
    [dp](atom::audit, std::vector<model::audit_record>& records) {
      dp->add_audit(std::move(records));
    },
    [dp](atom::absorbed, uint64_t count) {
      dp->health_absorbed = std::max(dp->health_absorbed, count);
    },
  }.unbox());
  d.housekeeping = [dp](bool& worked) { return dp->do_housekeeping(worked); };
  // Notifications leave from the server's own port: agents obey that only.
  d.send_from_listening_port(true);
  if (!d.listen(d.cfg.bind, d.cfg.port, error))
    return false;
  if (!d.setup_dtls(error))
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
