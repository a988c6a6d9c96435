// The main server's CoAP resources: one handler per resource and method,
// all registered in register_resources(). Handlers only decode, route and
// answer; the work happens in the actors.
#include <arpa/inet.h>
#include <cstring>
#include <functional>
#include <optional>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "transport/answer.hpp"
#include "actors/replies.hpp"
#include "model/queries.hpp"
#include "transport/server_handlers.hpp"
#include "transport/server_impl.hpp"

namespace coapfleet::transport {

namespace {

// -- names for error messages ----------------------------------------------------------

const char* method_name(const coap_pdu_t* req) {
  switch (coap_pdu_get_code(req)) {
    case COAP_REQUEST_CODE_GET: return "GET";
    case COAP_REQUEST_CODE_POST: return "POST";
    case COAP_REQUEST_CODE_PUT: return "PUT";
    case COAP_REQUEST_CODE_DELETE: return "DELETE";
    case COAP_REQUEST_CODE_FETCH: return "FETCH";
    case COAP_REQUEST_CODE_PATCH: return "PATCH";
    case COAP_REQUEST_CODE_IPATCH: return "iPATCH";
    default: return "this method";
  }
}

std::string path_of(coap_resource_t* r) {
  auto* uri = coap_resource_get_uri_path(r);
  return uri ? "/" + std::string(reinterpret_cast<const char*>(uri->s), uri->length) : "?";
}

}  // namespace

namespace handlers {

coap_reply problem_reply(uint16_t code, const model::problem& p) {
  return json_reply(code, model::encode_problem(p));
}

std::vector<std::string> uri_path_segments(const coap_pdu_t* req) {
  std::vector<std::string> parts;
  coap_opt_iterator_t it;
  coap_option_iterator_init(req, &it, COAP_OPT_ALL);
  while (coap_opt_t* opt = coap_option_next(&it))
    if (it.number == COAP_OPTION_URI_PATH)
      parts.emplace_back(reinterpret_cast<const char*>(coap_opt_value(opt)), coap_opt_length(opt));
  return parts;
}

bool read_body(impl& t, const coap_pdu_t* request, std::string_view& body, coap_reply& error) {
  coap_opt_iterator_t it;
  if (coap_opt_t* opt = coap_check_option(request, COAP_OPTION_CONTENT_FORMAT, &it)) {
    auto cf = coap_decode_var_bytes(coap_opt_value(opt), coap_opt_length(opt));
    if (cf != COAP_MEDIATYPE_TEXT_PLAIN && cf != COAP_MEDIATYPE_APPLICATION_JSON) {
      error = json_reply(415, model::encode_error(
                                "unsupported content format " + std::to_string(cf)
                                  + ": send application/json (50), text/plain (0) or none",
                                {{"field", "content-format"}}));
      return false;
    }
  }
  body = t.request_body(request);
  if (body.size() > t.cfg.max_payload) {
    error = json_reply(413, model::encode_error("payload too large: " + std::to_string(body.size())
                                                  + " bytes, the limit is "
                                                  + std::to_string(t.cfg.max_payload)));
    return false;
  }
  return true;
}

std::string first_segment(const coap_pdu_t* req) {
  coap_opt_iterator_t it;
  if (coap_opt_t* opt = coap_check_option(req, COAP_OPTION_URI_PATH, &it))
    return std::string(reinterpret_cast<const char*>(coap_opt_value(opt)), coap_opt_length(opt));
  return {};
}

void reply_now(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
               const coap_string_t* q, coap_pdu_t* resp, const coap_reply& reply) {
  respond(r, s, req, q, resp, reply);
}

void hnd_not_allowed(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                     const coap_string_t* q, coap_pdu_t* resp) {
  auto* allowed = static_cast<const char*>(coap_resource_get_userdata(r));
  reply_now(r, s, req, q, resp,
            json_reply(405, model::encode_error(std::string("method ") + method_name(req)
                                                  + " not allowed on " + path_of(r),
                                                {{"allowed", allowed ? allowed : ""}})));
}

}  // namespace handlers

namespace {

using namespace handlers;

// -- /test ----------------------------------------------------------------------------

void hnd_get_test(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                  const coap_string_t* q, coap_pdu_t* resp) {
  // Open to all, but credentials it cannot take are refused, not ignored.
  peer from;
  coap_reply refusal;
  if (!server_of(s)->identify_request(s, req, from, refusal))
    return reply_now(r, s, req, q, resp, refusal);
  reply_now(r, s, req, q, resp, text_reply(205, "Test resource working"));
}

// -- /health --------------------------------------------------------------------------

void hnd_get_health(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                    const coap_string_t* q, coap_pdu_t* resp) {
  serve(r, s, req, q, resp, resource{resource_kind::health, {}});
}

/// The hot path: decoded, routed to the node actor and answered at once
/// (piggybacked); the node actor owns everything that follows.
void hnd_put_health(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                    const coap_string_t* q, coap_pdu_t* resp) {
  auto& t = *server_of(s);
  if (is_deferred(s, req))  // the registry's answer for a quiet node
    return answer_async(r, s, req, q, resp, [](impl&, uint64_t, peer) {});
  if (t.stopping())
    return reply_now(r, s, req, q, resp, stopping_reply());
  if (t.shed_health())
    return reply_now(r, s, req, q, resp, t.shed_reply);
  std::string_view body;
  coap_reply error;
  if (!read_body(t, req, body, error))
    return reply_now(r, s, req, q, resp, error);
  auto h = model::decode_health_report(body);
  if (!h.ok())
    return reply_now(r, s, req, q, resp, problem_reply(400, h.err));
  coap_reply refusal;
  if (!t.allowed(s, req, model::access::report_health, h.value.node_id, refusal))
    return reply_now(r, s, req, q, resp, refusal);
  resource node{resource_kind::node_health, h.value.node_id};
  auto i = t.routes.find(h.value.node_id);
  if (i == t.routes.end()) {
    // A quiet node (no active actor) or an unknown one: the registry starts
    // its actor and answers (2.04, or 4.04 naming an unknown node).
    answer_async(r, s, req, q, resp, [&h](impl& t, uint64_t id, peer) {
      caf::anon_send(t.registry, atom::health::value, id, std::move(h.value), t.report_stamp());
    });
    return t.changed(node, urgency::telemetry);
  }
  caf::anon_send(i->second, atom::health::value, std::move(h.value), t.report_stamp());
  ++t.health_forwarded;
  t.changed(node, urgency::telemetry);  // /nodes and /health: the registry tells
  reply_now(r, s, req, q, resp, text_reply(204, "Health status updated"));
}

// -- /nodes ---------------------------------------------------------------------------

void hnd_get_nodes(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                   const coap_string_t* q, coap_pdu_t* resp) {
  auto query = model::decode_nodes_query(
    q ? std::string_view(reinterpret_cast<const char*>(q->s), q->length) : std::string_view{});
  if (!query.ok())
    return reply_now(r, s, req, q, resp, problem_reply(400, query.err));
  server_of(s)->get_nodes(r, s, req, q, resp, query.value);
}

/// GET /nodes/changes: the nodes changed since its previous copy (observe
/// it: each notification carries only what changed, with from/to numbers
/// that show a missed one).
void hnd_get_node_changes(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                          const coap_string_t* q, coap_pdu_t* resp) {
  serve(r, s, req, q, resp, resource{resource_kind::node_changes, {}});
}

/// GET /updates/changes: the jobs changed since its previous copy (as
/// /nodes/changes for nodes).
void hnd_get_job_changes(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                         const coap_string_t* q, coap_pdu_t* resp) {
  serve(r, s, req, q, resp, resource{resource_kind::job_changes, {}});
}

void hnd_post_nodes(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                    const coap_string_t* q, coap_pdu_t* resp) {
  auto& t = *server_of(s);
  if (is_deferred(s, req))
    return answer_async(r, s, req, q, resp, [](impl&, uint64_t, peer) {});
  std::string_view body;
  coap_reply error;
  if (!read_body(t, req, body, error))
    return reply_now(r, s, req, q, resp, error);
  auto nq = model::decode_nodes_request(body, peer_of(s).address);
  if (!nq.ok())
    return reply_now(r, s, req, q, resp, problem_reply(400, nq.err));
  answer_async(r, s, req, q, resp, [&nq](impl& t, uint64_t id, peer from) {
    auto& v = nq.value;
    if (v.label)
      caf::anon_send(t.gateway, atom::label::value, id, std::move(v.node_id),
                     std::move(v.labels), std::move(from));
    else
      caf::anon_send(t.gateway, atom::enroll::value, id, std::move(v.reg), std::move(from));
  });
}

// -- /updates -------------------------------------------------------------------------

void hnd_get_updates(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                     const coap_string_t* q, coap_pdu_t* resp) {
  serve(r, s, req, q, resp, resource{resource_kind::updates, {}});
}

void hnd_post_updates(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                      const coap_string_t* q, coap_pdu_t* resp) {
  auto& t = *server_of(s);
  if (is_deferred(s, req))
    return answer_async(r, s, req, q, resp, [](impl&, uint64_t, peer) {});
  std::string_view body;
  coap_reply error;
  if (!read_body(t, req, body, error))
    return reply_now(r, s, req, q, resp, error);
  auto u = model::decode_updates_request(body);
  if (!u.ok())
    return reply_now(r, s, req, q, resp, problem_reply(400, u.err));
  if (u.value.action == model::updates_action::status) {
    // A read, possibly large: the job's status representation. The job
    // supervisor says whether the job exists (a job this transport has no
    // route to yet: just loaded, claimed, or run by another member); the
    // representation of one that does not goes with its 4.04.
    return serve(r, s, req, q, resp, resource{resource_kind::job_status, u.value.job_id});
  }
  answer_async(r, s, req, q, resp, [&u](impl& t, uint64_t id, peer from) {
    auto& v = u.value;
    switch (v.action) {
      case model::updates_action::create:
        caf::anon_send(t.gateway, atom::create::value, id, std::move(v.spec), std::move(from));
        break;
      case model::updates_action::install:
        caf::anon_send(t.gateway, atom::install::value, id, std::move(v.job_id),
                       std::move(from));
        break;
      case model::updates_action::status:
        break;  // answered above
      case model::updates_action::report:
        caf::anon_send(t.gateway, atom::report::value, id, std::move(v.report), std::move(from));
        break;
      case model::updates_action::cancel:
        caf::anon_send(t.gateway, atom::cancel::value, id, std::move(v.job_id), v.force,
                       std::move(from));
        break;
      case model::updates_action::retry:
        caf::anon_send(t.gateway, atom::retry::value, id, std::move(v.job_id), std::move(from));
        break;
      case model::updates_action::pause:
      case model::updates_action::resume:
      case model::updates_action::close: {
        std::string name = v.action == model::updates_action::pause    ? "pause"
                           : v.action == model::updates_action::resume ? "resume"
                                                                       : "close";
        caf::anon_send(t.gateway, atom::action::value, id, std::move(v.job_id), std::move(name),
                       std::move(from));
        break;
      }
      case model::updates_action::remove:
        caf::anon_send(t.gateway, atom::remove::value, id, std::move(v.job_id), std::move(from));
        break;
    }
  });
}

// -- /system --------------------------------------------------------------------------

void hnd_get_system(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                    const coap_string_t* q, coap_pdu_t* resp) {
  serve(r, s, req, q, resp, resource{resource_kind::system, {}});
}

/// status asks the database now (a small answer, sent when it is there);
/// restart and shutdown are answered before the process stops.
void hnd_post_system(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                     const coap_string_t* q, coap_pdu_t* resp) {
  auto& t = *server_of(s);
  if (is_deferred(s, req))
    return answer_async(r, s, req, q, resp, [](impl&, uint64_t, peer) {});
  std::string_view body;
  coap_reply error;
  if (!read_body(t, req, body, error))
    return reply_now(r, s, req, q, resp, error);
  auto a = model::decode_system_request(body);
  if (!a.ok())
    return reply_now(r, s, req, q, resp, problem_reply(400, a.err));
  answer_async(r, s, req, q, resp, [&a](impl& t, uint64_t id, peer from) {
    caf::anon_send(t.gateway, atom::action::value, id, a.value, std::move(from));
  });
}

// -- /keys -----------------------------------------------------------------------------

/// Keys are for operators (access::manage_keys, decided from the peer the
/// transport established). The listing is served from the table of valid
/// keys the transport holds, at once: a separate response (the gateway's
/// way) that needs more than one block is one libcoap 4.3.1's coap-client
/// cannot follow, and a fleet has a key per node. Changes go to the gateway.
void keys_request(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                  const coap_string_t* q, coap_pdu_t* resp, model::key_request k) {
  auto& t = *server_of(s);
  if (k.action == model::key_action::list && t.keys_listing) {
    coap_reply refused;
    if (!t.allowed(s, req, model::access::manage_keys, {}, refused))
      return reply_now(r, s, req, q, resp, refused);
    coap_reply listing;
    listing.code = 205;
    listing.content_format = 50;
    listing.etag = t.etag_salt + t.keys_tables;  // a new one for every table
    listing.shared_body = t.keys_listing;
    return reply_now(r, s, req, q, resp, listing);
  }
  answer_async(r, s, req, q, resp, [&k](impl& t, uint64_t id, peer from) {
    caf::anon_send(t.gateway, atom::keys::value, id, std::move(k), std::move(from));
  });
}

void hnd_get_keys(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                  const coap_string_t* q, coap_pdu_t* resp) {
  if (is_deferred(s, req))  // asked of the gateway before the first table came
    return answer_async(r, s, req, q, resp, [](impl&, uint64_t, peer) {});
  keys_request(r, s, req, q, resp, model::key_request{});
}

void hnd_post_keys(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                   const coap_string_t* q, coap_pdu_t* resp) {
  auto& t = *server_of(s);
  if (is_deferred(s, req))
    return answer_async(r, s, req, q, resp, [](impl&, uint64_t, peer) {});
  std::string_view body;
  coap_reply error;
  if (!read_body(t, req, body, error))
    return reply_now(r, s, req, q, resp, error);
  auto k = model::decode_keys_request(body);
  if (!k.ok())
    return reply_now(r, s, req, q, resp, problem_reply(400, k.err));
  keys_request(r, s, req, q, resp, std::move(k.value));
}

/// /nodes/<id>/health (owned by the node actor; the registry answers 4.04
/// for an unknown node) and /updates/<id>/status (owned by the job actor):
/// GET only, observable. They exist while their node is registered, their
/// job is known.
void hnd_nested(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                const coap_string_t* q, coap_pdu_t* resp, const resource& key) {
  // A node that is not active, a job this transport has no route to: the
  // registry or the job supervisor answers for it (4.04 when it does not
  // exist).
  if (!is_deferred(s, req) && coap_pdu_get_code(req) != COAP_REQUEST_CODE_GET)
    return reply_now(r, s, req, q, resp,
                     json_reply(405, model::encode_error(std::string("method ")
                                                           + method_name(req)
                                                           + " not allowed on /"
                                                           + path_of(key),
                                                         {{"allowed", "GET"}})));
  serve(r, s, req, q, resp, key);
}

/// The node's health or job's status a path of three segments names.
std::optional<resource> nested_resource(const std::vector<std::string>& parts) {
  resource r;
  if (parts.size() == 3 && resource_of_path(parts[0] + "/" + parts[1] + "/" + parts[2], r)
      && r.id == parts[1])
    return r;
  return std::nullopt;
}

void hnd_unknown(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                 const coap_string_t* q, coap_pdu_t* resp) {
  auto parts = uri_path_segments(req);
  if (auto key = nested_resource(parts))
    return hnd_nested(r, s, req, q, resp, *key);
  if (!job_spec_id(req).empty())
    return hnd_get_job_spec(r, s, req, q, resp);
  if (hnd_delete_job(r, s, req, q, resp, parts) || hnd_history(r, s, req, q, resp, parts))
    return;
  auto name = artifact_name(req);
  if (!name.empty()) {
    if (coap_pdu_get_code(req) == COAP_REQUEST_CODE_PUT)
      return hnd_put_artifact(r, s, req, q, resp);  // the first version of a new artifact
    if (coap_pdu_get_code(req) == COAP_REQUEST_CODE_GET)
      return reply_now(r, s, req, q, resp,
                       json_reply(404, model::encode_error("artifact not found",
                                                           {{"field", "artifact"},
                                                            {"name", name}})));
  }
  std::string path;
  coap_opt_iterator_t it;
  coap_option_iterator_init(req, &it, COAP_OPT_ALL);
  while (coap_opt_t* opt = coap_option_next(&it))
    if (it.number == COAP_OPTION_URI_PATH) {
      path += '/';
      path.append(reinterpret_cast<const char*>(coap_opt_value(opt)), coap_opt_length(opt));
    }
  reply_now(r, s, req, q, resp,
            json_reply(404, model::encode_error("no such resource",
                                                {{"path", path.empty() ? "/" : path}})));
}
struct resource_spec {
  const char* path;
  const char* allowed;  ///< for 4.05 answers
  const char* rt;
  const char* iface;
  const char* ct;
  coap_method_handler_t get, post, put;
};


}  // namespace

void server_transport::impl::render_keys_listing(const model::key_table& table) {
  std::vector<model::key_info> listed;
  listed.reserve(table.keys.size());
  for (auto& k : table.keys)
    listed.push_back({k.id, k.r, k.created_at, k.expires_at});
  keys_listing = std::make_shared<shared_string>(model::encode_keys(listed));
  ++keys_tables;
}

bool server_transport::impl::observable_path(const std::string& path) const {
  auto first = path.find('/');
  auto last = path.rfind('/');
  if (first == std::string::npos || last == first || last == first + 1)
    return false;
  auto head = std::string_view(path).substr(0, first);
  auto tail = std::string_view(path).substr(last + 1);
  if (std::string_view(path).substr(first + 1, last - first - 1).find('/') != std::string_view::npos)
    return false;
  return (head == "nodes" && tail == "health") || (head == "updates" && tail == "status");
}

bool server_transport::impl::register_resources() {
  static const resource_spec specs[] = {
    {"test", "GET", "\"coapfleet.test\"", nullptr, "0", gated<hnd_get_test>, nullptr, nullptr},
    {"health", "GET, PUT", "\"coapfleet.health\"", "\"core.s\"", "50", gated<hnd_get_health>, nullptr,
     gated<hnd_put_health>},
    {"nodes", "GET, POST", "\"coapfleet.nodes\"", "\"core.b\"", "50", gated<hnd_get_nodes>,
     gated<hnd_post_nodes>, nullptr},
    {"nodes/changes", "GET", "\"coapfleet.node-changes\"", nullptr, "50",
     gated<hnd_get_node_changes>, nullptr, nullptr},
    {"updates/changes", "GET", "\"coapfleet.update-changes\"", nullptr, "50",
     gated<hnd_get_job_changes>, nullptr, nullptr},
    {"updates", "GET, POST", "\"coapfleet.updates\"", "\"core.b\"", "50", gated<hnd_get_updates>,
     gated<hnd_post_updates>, nullptr},
    {"system", "GET, POST", "\"coapfleet.system\"", "\"core.p\"", "50", gated<hnd_get_system>,
     gated<hnd_post_system>, nullptr},
    {"artifacts", "GET", "\"coapfleet.artifacts\"", "\"core.b\"", "50", gated<hnd_get_artifacts>,
     nullptr, nullptr},
    {"keys", "GET, POST", "\"coapfleet.keys\"", nullptr, "50", gated<hnd_get_keys>, gated<hnd_post_keys>,
     nullptr},
    {"audit", "GET", "\"coapfleet.audit\"", nullptr, "50", gated<hnd_get_audit>, nullptr, nullptr},
    {"cluster", "GET", "\"coapfleet.cluster\"", nullptr, "50", gated<hnd_get_cluster>, nullptr,
     nullptr},
  };
  for (auto& spec : specs) {
    auto* r = coap_resource_init(coap_make_str_const(spec.path), 0);
    if (!r)
      return false;
    coap_resource_set_userdata(r, const_cast<char*>(spec.allowed));
    register_methods(r, gated<hnd_not_allowed>, spec.get, spec.post, spec.put);
    coap_add_attr(r, coap_make_str_const("rt"), coap_make_str_const(spec.rt), 0);
    if (spec.iface)
      coap_add_attr(r, coap_make_str_const("if"), coap_make_str_const(spec.iface), 0);
    coap_add_attr(r, coap_make_str_const("ct"), coap_make_str_const(spec.ct), 0);
    std::string path = spec.path;
    if (path == "nodes/changes" || path == "updates/changes")
      make_observable(r, spec.get);  // its copies exist while someone reads them
    if (path == "health" || path == "nodes" || path == "updates") {
      make_observable(r, spec.get);
      auto kind = path == "health" ? resource_kind::health
                  : path == "nodes" ? resource_kind::nodes : resource_kind::updates;
      find(resource{kind, {}}, true);
    }
    coap_add_resource(ctx, r);
  }
  auto* unknown = coap_resource_unknown_init2(hnd_unknown, 0);
  if (!unknown)
    return false;
  register_methods(unknown, gated<hnd_unknown>, nullptr);
  make_observable_paths(unknown, gated<hnd_unknown>);
  coap_add_resource(ctx, unknown);
  return true;
}

}  // namespace coapfleet::transport

