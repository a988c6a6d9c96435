// GET /nodes/<id>/history and /updates/<job>/history, DELETE /updates/<job>
// and /nodes/<id>,
// and GET /updates/<job>/spec[?node_id=ID]: where an
// agent fetches the job it was notified of, over its own session
// (notifications carry ids only). The gateway decides who may read which
// node's part; this decodes and routes.
#include <string>
#include <vector>

#include "model/history.hpp"
#include "model/queries.hpp"
#include "transport/server_handlers.hpp"
#include "transport/server_impl.hpp"

namespace coapfleet::transport {

namespace handlers {

std::string job_spec_id(const coap_pdu_t* req) {
  auto parts = uri_path_segments(req);
  if (parts.size() != 3 || parts[0] != "updates" || parts[2] != "spec" || parts[1].empty())
    return {};
  return parts[1];
}

void hnd_get_job_spec(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                      const coap_string_t* q, coap_pdu_t* resp) {
  if (is_deferred(s, req))
    return answer_async(r, s, req, q, resp, [](impl&, uint64_t, peer) {});
  auto job = job_spec_id(req);
  if (coap_pdu_get_code(req) != COAP_REQUEST_CODE_GET)
    return reply_now(r, s, req, q, resp,
                     json_reply(405, model::encode_error("method not allowed on /updates/" + job
                                                           + "/spec",
                                                         {{"allowed", "GET"}})));
  auto query = model::decode_spec_query(
    q ? std::string_view(reinterpret_cast<const char*>(q->s), q->length) : std::string_view{});
  if (!query.ok())
    return reply_now(r, s, req, q, resp, problem_reply(400, query.err));
  auto node = std::move(query.value);
  answer_async(r, s, req, q, resp, [&](impl& t, uint64_t id, peer from) {
    caf::anon_send(t.gateway, atom::job::value, id, job, node, std::move(from));
  });
}

bool hnd_history(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                 const coap_string_t* q, coap_pdu_t* resp, const std::vector<std::string>& parts) {
  if (parts.size() != 3 || parts[2] != "history" || parts[1].empty()
      || (parts[0] != "nodes" && parts[0] != "updates"))
    return false;
  if (is_deferred(s, req)) {
    answer_async(r, s, req, q, resp, [](impl&, uint64_t, peer) {});
    return true;
  }
  auto path = "/" + parts[0] + "/" + parts[1] + "/history";
  if (coap_pdu_get_code(req) != COAP_REQUEST_CODE_GET) {
    reply_now(r, s, req, q, resp,
              json_reply(405, model::encode_error("method not allowed on " + path,
                                                  {{"allowed", "GET"}})));
    return true;
  }
  auto query = model::decode_history_query(
    q ? std::string_view(reinterpret_cast<const char*>(q->s), q->length) : std::string_view{});
  if (!query.ok()) {
    reply_now(r, s, req, q, resp, problem_reply(400, query.err));
    return true;
  }
  query.value.by_job = parts[0] == "updates";
  query.value.id = parts[1];
  answer_async(r, s, req, q, resp, [&](impl& t, uint64_t id, peer from) {
    caf::anon_send(t.gateway, atom::history::value, id, std::move(query.value), std::move(from));
  });
  return true;
}

bool hnd_delete_job(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                    const coap_string_t* q, coap_pdu_t* resp,
                    const std::vector<std::string>& parts) {
  if (parts.size() != 2 || (parts[0] != "updates" && parts[0] != "nodes") || parts[1].empty()
      || coap_pdu_get_code(req) != COAP_REQUEST_CODE_DELETE)
    return false;
  if (is_deferred(s, req)) {
    answer_async(r, s, req, q, resp, [](impl&, uint64_t, peer) {});
    return true;
  }
  auto target = parts[1];
  bool node = parts[0] == "nodes";
  answer_async(r, s, req, q, resp, [&](impl& t, uint64_t id, peer from) {
    if (node)  // decommission
      caf::anon_send(t.gateway, atom::forget::value, id, target, std::move(from));
    else
      caf::anon_send(t.gateway, atom::remove::value, id, target, std::move(from));
  });
  return true;
}

}  // namespace handlers

}  // namespace coapfleet::transport
