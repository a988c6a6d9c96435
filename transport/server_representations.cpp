// The representations the server's transport serves: kept fresh by asking
// the gateway after every change, so that no read ever waits for an actor
// (see `representation` in server_impl.hpp for the rules).
#include <algorithm>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "transport/answer.hpp"
#include "transport/server_handlers.hpp"
#include "transport/server_impl.hpp"

namespace coapfleet::transport {

namespace {

/// The kinds kept fresh whether anyone reads them: the fleet-wide ones but
/// the node listing and its changes (read from the database; a copy only
/// for their readers), and not a node's health. A job's status is kept
/// fresh when the job runs here (its route says so); one run by another
/// member, or asked for before its route came, only while it is observed.
bool always_fresh(resource_kind k) {
  return k != resource_kind::node_health && k != resource_kind::nodes
         && k != resource_kind::node_changes && k != resource_kind::job_changes
         && k != resource_kind::job_status;
}

/// The kinds whose copy exists only for its readers and observers: a change
/// refreshes one that exists and creates none.
bool on_demand(resource_kind k) {
  return k == resource_kind::node_health || k == resource_kind::job_status;
}

/// The kinds whose copy takes what it lists (what changed since the previous
/// copy): a copy nobody would read is not rendered, or the changes it took
/// would be lost to the next reader.
bool takes_what_it_lists(resource_kind k) {
  return k == resource_kind::node_changes || k == resource_kind::job_changes;
}

/// The rendering time that spaces refreshes at most counts this much (a
/// refresh follows a telemetry change within 20 times it: 5 s).
constexpr int64_t max_spacing_render_ms = 250;

uint64_t fnv1a(const std::string& s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

representation* server_transport::impl::find(const resource& r, bool create) {
  auto path = path_of(r);
  auto i = reps.find(path);
  if (i != reps.end())
    return &i->second;
  if (!create)
    return nullptr;
  auto& rep = reps[path];
  rep.key = r;
  rep.warm = always_fresh(r.kind);
  return &rep;
}

void server_transport::impl::keep_fresh(const resource& r) {
  auto* rep = find(r, true);
  if (!rep->has && !rep->refreshing)
    schedule_refresh(*rep, true);
}

void server_transport::impl::forget(const resource& r) {
  auto path = path_of(r);
  auto i = reps.find(path);
  if (i == reps.end())
    return;
  // Waiters get what a request for a resource that does not exist gets.
  for (auto& w : i->second.waiters)
    complete(w.id, json_reply(404, model::encode_error("no such resource", {{"path", "/" + path}})));
  if (observed(path))
    to_delete.push_back(path);  // its observers get 4.04 (from the loop, outside handlers)
  else
    reps.erase(i);
  behind.erase(path);
  release_held();
}

namespace {

/// The node of "nodes/<id>/health" ("" for any other path).
std::string observed_node(const std::string& path) {
  resource r;
  return resource_of_path(path, r) && r.kind == resource_kind::node_health ? r.id : "";
}

}  // namespace

void server_transport::impl::first_observed(const std::string& path) {
  // The registry announces every change of the node from now on, also one
  // that did not pass through this transport (another member took it).
  if (auto node = observed_node(path); !node.empty())
    caf::anon_send(registry, atom::observe::value, std::move(node), true);
}

void server_transport::impl::unobserved(const std::string& path) {
  if (auto node = observed_node(path); !node.empty())
    caf::anon_send(registry, atom::observe::value, std::move(node), false);
  auto i = reps.find(path);
  if (i == reps.end())
    return;
  auto& rep = i->second;
  rep.observe_asked = false;
  bool gone = rep.has && rep.reply.code == 404;  // a job deleted meanwhile
  if ((!rep.warm || gone) && rep.waiters.empty() && !rep.refreshing && rep.due < 0)
    reps.erase(i);  // a node's health nobody watches any more
}

void server_transport::impl::changed(const resource& r, urgency u) {
  if (r.kind == resource_kind::nodes)
    changed(resource{resource_kind::node_changes, {}}, u);  // its changes, too
  if (r.kind == resource_kind::updates)
    changed(resource{resource_kind::job_changes, {}}, u);
  // A node's health (a job's status run elsewhere) is kept only while
  // someone observes it.
  auto* rep = find(r, !on_demand(r.kind));
  if (rep == nullptr)
    return;
  rep->valid = false;
  if (!rep->warm && rep->waiters.empty() && !observed_rep(*rep))
    return;  // nobody needs a copy: the next read asks for one
  // Read-your-writes costs a rendering per acknowledged batch of writes:
  // worth it for representations that render quickly; one that takes
  // longer (the listing of a large fleet) follows its control changes like
  // telemetry, at most every twenty renderings' time, and holds no answers.
  bool control = u == urgency::control && rep->render_ms <= cfg.hold_render_ms;
  if (control) {
    rep->control_mark = ++control_seq;
    behind.insert(path_of(r));
  }
  schedule_refresh(*rep, control);
}

void server_transport::impl::schedule_refresh(representation& rep, bool urgent) {
  if (rep.refreshing) {
    rep.again = true;
    return;
  }
  auto now = steady_millis();
  // Control changes: at once, but never more than a fifth of the time on one
  // representation (a registration burst on a large fleet renders its
  // listing every few milliseconds otherwise; the acknowledgements held for
  // it wait at most four renderings longer).
  // A rendering's time is mostly work (a large fleet's listing), but may be
  // waiting (a member that went away answers a fleet-wide listing only at
  // its timeout): the spacing it sets is bounded, so that a copy rendered
  // without a lost member's part is rendered again within seconds.
  int64_t render_ms = std::min<int64_t>(rep.render_ms, max_spacing_render_ms);
  int64_t at = std::max(now, rep.last_refresh + 4 * render_ms);
  if (!urgent && !rep.behind()) {
    // Telemetry: at most every interval, and never more than a twentieth
    // of the time on one representation (the fleet's listing grows with it).
    // Observers of the fleet's listing get it at most once a second.
    int64_t interval = std::max<int64_t>(cfg.observe_interval_ms, cfg.publish_interval_ms);
    if (rep.key.kind == resource_kind::nodes && observed_rep(rep))
      interval = std::max<int64_t>(interval, 1000);
    interval = std::max<int64_t>(interval, 20 * render_ms);
    at = std::max(now, rep.last_refresh + interval);
  }
  if (rep.due >= 0 && rep.due <= at)
    return;  // already scheduled, as soon or sooner
  bool listed = rep.due >= 0;
  rep.due = at;
  if (!listed)
    due_paths.push_back(path_of(rep.key));
}

void server_transport::impl::refresh(representation& rep) {
  rep.due = -1;
  rep.refreshing = true;
  rep.again = false;
  rep.asked_mark = control_seq;
  auto id = next_id();
  auto path = path_of(rep.key);
  CF_TRACE("transport", "refreshing ", path);
  refreshes[id] = asked{path, steady_millis()};
  if (rep.key.kind == resource_kind::nodes)
    caf::anon_send(reader, atom::get::value, id, now_millis());  // for its observers
  else if (rep.key.kind == resource_kind::node_changes)
    caf::anon_send(registry, atom::changes::value, id);  // then the reader renders them
  else
    caf::anon_send(gateway, atom::observe::value, id, rep.key);
}

representation* server_transport::impl::refresh_of(uint64_t id, int64_t& asked_at) {
  auto i = refreshes.find(id);
  if (i == refreshes.end())
    return nullptr;
  auto path = std::move(i->second.path);
  asked_at = i->second.at;
  refreshes.erase(i);
  auto r = reps.find(path);
  return r == reps.end() ? nullptr : &r->second;
}

void server_transport::impl::refreshed(representation& rep, int64_t asked_at) {
  auto now = steady_millis();
  bool first = !rep.has;  // its waiters get it as their answer: no notification
  rep.has = true;
  rep.refreshing = false;
  rep.valid = !rep.again;
  rep.last_refresh = now;
  rep.render_ms = now - asked_at;
  rep.covered = std::max(rep.covered, rep.asked_mark);
  ++rep.version;
  auto path = path_of(rep.key);
  if (!rep.health && !rep.system)
    rep.reply.etag = rep.reply.code == 205 ? fnv1a(path, etag_salt) ^ rep.version : 0;
  if (!rep.behind())
    behind.erase(path);
  if (!first && observed(path))
    to_notify.push_back(path);
  auto waiters = std::move(rep.waiters);
  rep.waiters.clear();
  for (auto& w : waiters)
    complete(w.id, w.answer ? w.answer(rep) : current(rep));
  if (rep.reply.code / 100 != 2 && !rep.warm && !observed(path))
    rep.observe_asked = false;  // an error (an unknown node) establishes no observation
  // One nobody would read (no observer: its reader got the copy above) is
  // not taken, so what changed meanwhile stays for the next reader.
  if (rep.again && !(takes_what_it_lists(rep.key.kind) && !observed_rep(rep)))
    schedule_refresh(rep, rep.behind());
  else if ((!rep.warm || rep.reply.code == 404) && !observed_rep(rep)) {
    behind.erase(path);
    reps.erase(path);  // a copy nobody keeps (a node's health, read once; a job
                       // that does not exist: an id asked for is not kept)
  }
  release_held();
}

void server_transport::impl::render_failed(representation& rep, coap_reply error) {
  auto path = path_of(rep.key);
  CF_WARN("transport", "rendering ", path, " failed (", error.code / 100, ".",
          error.code % 100 < 10 ? "0" : "", error.code % 100, "): asked again in ",
          render_retry_ms, " ms");
  rep.refreshing = false;
  rep.valid = false;
  auto waiters = std::move(rep.waiters);
  rep.waiters.clear();
  for (auto& w : waiters)
    complete(w.id, error);
  if (!rep.warm && !observed(path))
    rep.observe_asked = false;  // the error answered the Observe: no observation
  if (!rep.warm && !observed_rep(rep)) {
    behind.erase(path);
    reps.erase(path);  // nobody keeps it: the next read asks again
    return release_held();
  }
  int64_t at = steady_millis() + render_retry_ms;
  if (rep.due < 0 || rep.due > at) {
    bool listed = rep.due >= 0;
    rep.due = at;
    if (!listed)
      due_paths.push_back(path);
  }
  // Acknowledgements held for this copy are not held by a failure.
  rep.covered = std::max(rep.covered, rep.asked_mark);
  if (!rep.behind())
    behind.erase(path);
  release_held();
}

void server_transport::impl::deliver(uint64_t id, coap_reply reply) {
  if (!behind.empty()) {
    held.push_back(held_reply{id, std::move(reply), control_seq});
    return;
  }
  complete(id, std::move(reply));
}

void server_transport::impl::release_held() {
  while (!held.empty()) {
    auto& h = held.front();
    // Held while a representation misses a control change made before it.
    bool wait = false;
    for (auto& path : behind) {
      auto i = reps.find(path);
      if (i != reps.end() && i->second.covered < std::min(i->second.control_mark, h.seq)) {
        wait = true;
        break;
      }
    }
    if (wait)
      return;  // in order: a later one waits for at least as much
    auto id = h.id;
    auto reply = std::move(h.reply);
    held.pop_front();
    complete(id, std::move(reply));
  }
}

coap_reply server_transport::impl::current(representation& rep) {
  if (rep.health) {
    auto h = *rep.health;
    auto now = now_millis();
    h.timestamp = now;
    auto sample = process.take(steady_millis());
    h.server.rss_bytes = sample.rss_bytes;
    h.server.cpu_percent = sample.cpu_percent < 0 ? model::absent : sample.cpu_percent;
    h.server.uptime_seconds = static_cast<double>(now - started_at) / 1000.0;
    return json_reply(205, model::encode_fleet_health(h));
  }
  if (rep.system) {
    auto s = *rep.system;
    auto now = now_millis();
    s.timestamp = now;
    s.uptime_seconds = static_cast<double>(now - started_at) / 1000.0;
    return json_reply(205, model::encode_system_info(s));
  }
  return rep.reply;
}

namespace handlers {

bool has_observe(const coap_pdu_t* req) {
  coap_opt_iterator_t it;
  coap_opt_t* opt = coap_check_option(req, COAP_OPTION_OBSERVE, &it);
  return opt && coap_decode_var_bytes(coap_opt_value(opt), coap_opt_length(opt)) == 0;
}

/// A deferred answer being sent: libcoap calls the handler again with the
/// original request once the answer is ready (answer_async sends it).
bool is_deferred(coap_session_t* s, const coap_pdu_t* req) {
  return coap_find_async(s, coap_pdu_get_token(req)) != nullptr;
}

/// Serves a representation without waiting: the latest copy at once; only
/// when there is none yet (start-up, a node's health nobody observes) an
/// async answer once it has arrived. `answer` turns the copy into the answer
/// (a cut of the node listing); empty: the copy as it is.
void serve(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req, const coap_string_t* q,
           coap_pdu_t* resp, const resource& key,
           std::function<coap_reply(representation&)> answer) {
  auto& t = *server_of(s);
  if (is_deferred(s, req))
    return answer_async(r, s, req, q, resp, [](impl&, uint64_t, peer) {});
  coap_reply refusal;
  bool one_node = key.kind == resource_kind::node_health;
  if (!t.allowed(s, req, one_node ? model::access::read_node : model::access::read_fleet,
                 one_node ? key.id : std::string{}, refusal))
    return reply_now(r, s, req, q, resp, refusal);
  // Only a GET registers an observation of this resource (a POST that reads
  // a job's status observes nothing here).
  bool observe = has_observe(req) && coap_pdu_get_code(req) == COAP_REQUEST_CODE_GET;
  auto* rep = t.find(key, false);
  if (rep != nullptr && observe)
    rep->observe_asked = true;
  // A copy nobody keeps fresh (a node's health that is not observed) is only
  // good while nothing changed; the fleet-wide ones are always the latest.
  if (rep != nullptr && rep->has && (rep->warm || rep->valid || t.observed_rep(*rep)))
    return reply_now(r, s, req, q, resp, answer ? answer(*rep) : t.current(*rep));
  if (t.notifying())
    return;  // nothing to notify yet: the next copy will be
  if (t.stopping())
    return reply_now(r, s, req, q, resp, stopping_reply());
  // Created only for a request that waits for it: one answered otherwise
  // (busy, a retransmission answered before) leaves nothing behind.
  answer_async(r, s, req, q, resp, [&](impl& t, uint64_t id, peer) {
    auto* rep = t.find(key, true);
    if (observe)
      rep->observe_asked = true;
    rep->waiters.push_back({id, std::move(answer)});
    if (!rep->refreshing)
      t.schedule_refresh(*rep, true);
  });
}

}  // namespace handlers

}  // namespace coapfleet::transport
