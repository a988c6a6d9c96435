#include "transport/server_transport.hpp"

#include <algorithm>
#include <malloc.h>

#include "common/log.hpp"
#include "model/json.hpp"
#include "transport/answer.hpp"
#include "transport/server_impl.hpp"

namespace coapfleet::transport {

server_transport::impl::impl(caf::actor_system& sys, server_transport_config cfg)
  : runtime(sys), cfg(std::move(cfg)), shed(this->cfg.shedding) {
  shed_reply = json_reply(503, model::encode_error("server overloaded: health reports arrive "
                                                   "faster than they can be stored; retry "
                                                   "after Max-Age seconds"));
  shed_reply.max_age = this->cfg.shedding.max_age_s;
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

void server_transport::impl::changed(const std::string& path) {
  auto i = observables.find(path);
  if (i == observables.end())
    return;
  auto& o = i->second;
  o.valid = false;
  ++o.generation;
  if (o.observed)
    schedule_refresh(path, o);
}

void server_transport::impl::schedule_refresh(const std::string& path, observable& o) {
  if (o.refreshing) {
    o.again = true;
    return;
  }
  if (o.due >= 0)
    return;  // already scheduled
  int64_t interval = path == "nodes" ? std::max<int64_t>(cfg.observe_interval_ms, 1000)
                                     : cfg.observe_interval_ms;
  o.due = std::max(steady_millis(), o.last_refresh + interval);
  due_paths.push_back(path);
}

void server_transport::impl::refresh(const std::string& path, observable& o) {
  o.due = -1;
  o.refreshing = true;
  o.again = false;
  CF_TRACE("transport", "refreshing observed ", path);
  auto p = std::make_unique<pending_request>();
  p->id = next_id();
  auto id = p->id;
  p->on_ready = [this, path](coap_reply r) {
    auto i = observables.find(path);
    if (i == observables.end())
      return;  // deleted meanwhile
    auto& o = i->second;
    o.cached = std::move(r);
    o.has_cache = true;
    o.valid = !o.again;
    o.refreshing = false;
    o.last_refresh = steady_millis();
    to_notify.push_back(path);
    if (o.again) {
      o.again = false;
      schedule_refresh(path, o);
    }
  };
  pending.emplace(id, std::move(p));
  caf::anon_send(gateway, atom::observe::value, id, path);
}

int64_t server_transport::impl::do_housekeeping(bool& worked) {
  for (auto& name : artifacts_to_add)
    add_artifact_resource(name);
  artifacts_to_add.clear();
  for (auto& path : to_create) {
    if (observables.count(path))
      continue;
    auto* r = add_nested_resource(path, path.rfind("nodes/", 0) == 0 ? "\"coapfleet.node.health\""
                                                                      : "\"coapfleet.job.status\"");
    if (r)
      observables[path].resource = r;
  }
  to_create.clear();
  for (auto& path : to_delete) {
    auto i = observables.find(path);
    if (i == observables.end())
      continue;
    // libcoap ends every observation of it with 4.04 Not Found.
    coap_delete_resource(ctx, i->second.resource);
    observables.erase(i);
    worked = true;
  }
  to_delete.clear();
  for (auto& path : to_notify) {
    auto i = observables.find(path);
    if (i != observables.end() && i->second.resource) {
      coap_resource_notify_observers(i->second.resource, nullptr);
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
  // Only the paths with a refresh scheduled: a fleet has an observable per
  // node, and this runs on every turn of the loop.
  int64_t next = -1;
  auto now = steady_millis();
  std::vector<std::string> later;
  for (auto& path : due_paths) {
    auto i = observables.find(path);
    if (i == observables.end() || i->second.due < 0)
      continue;
    auto& o = i->second;
    if (o.due <= now) {
      refresh(path, o);
    } else {
      next = next < 0 ? o.due - now : std::min(next, o.due - now);
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

void server_transport::set_gateway(gateway_actor gateway) {
  impl_->gateway = std::move(gateway);
}

std::string server_transport::endpoint_description() const {
  return endpoint_uri(impl_->cfg.bind, impl_->cfg.port) + ", receive buffer "
         + std::to_string(impl_->receive_queue_state().buffer / 1024) + " KiB";
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
      if (!dp->routes.count(node_id))
        dp->to_create.push_back("nodes/" + node_id + "/health");
      dp->routes[std::move(node_id)] = std::move(node);
    },
    [dp](atom::notify, job_actor& job, std::string& ip, uint16_t port,
         model::update_notification& note) { dp->send_notification(job, ip, port, note); },
    [dp](atom::reply, uint64_t id, coap_reply& reply) { dp->complete(id, std::move(reply)); },
    [dp](atom::artifact, std::string& name) { dp->artifacts_to_add.push_back(std::move(name)); },
    [dp](atom::route, std::string& job_id, job_actor&) {
      dp->to_create.push_back("updates/" + job_id + "/status");
    },
    [dp](atom::forget, std::string& job_id) {
      dp->to_delete.push_back("updates/" + job_id + "/status");
    },
    [dp](atom::changed, std::string& path) { dp->changed(path); },
    [dp](atom::absorbed, uint64_t count) {
      dp->health_absorbed = std::max(dp->health_absorbed, count);
    },
  });
  d.housekeeping = [dp](bool& worked) { return dp->do_housekeeping(worked); };
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
