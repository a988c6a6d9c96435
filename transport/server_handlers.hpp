// Internal to the main server's transport: the helpers every resource
// handler uses (body checks, immediate and deferred answers) and the
// handlers defined outside server_resources.cpp (server_artifacts.cpp).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/json.hpp"
#include "transport/answer.hpp"
#include "transport/server_impl.hpp"

namespace coapfleet::transport::handlers {

using impl = server_transport::impl;

coap_reply problem_reply(uint16_t code, const model::problem& p);

/// The Uri-Path options of a request, in order ("updates", "<job>", "spec").
std::vector<std::string> uri_path_segments(const coap_pdu_t* req);

/// The first Uri-Path segment of a request ("" for none).
std::string first_segment(const coap_pdu_t* req);

/// The request body, after the checks every body-carrying request gets:
/// content format (none, 0 or 50, else 4.15) and size (4.13 above the limit).
bool read_body(impl& t, const coap_pdu_t* request, std::string_view& body, coap_reply& error);

/// Answers at once (piggybacked).
void reply_now(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
               const coap_string_t* q, coap_pdu_t* resp, const coap_reply& reply);

template <class Start>
void answer_async(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
                  const coap_string_t* query, coap_pdu_t* response, Start&& start) {
  transport::answer_async(*server_of(session), resource, session, request, query, response,
                          std::forward<Start>(start));
}

/// A deferred answer being sent: libcoap calls the handler again with the
/// original request once the answer is ready (answer_async then sends it).
bool is_deferred(coap_session_t* s, const coap_pdu_t* req);

/// The request registers an observation (Observe: 0).
bool has_observe(const coap_pdu_t* req);

/// Serves a representation without waiting (server_resources.cpp): the
/// latest copy at once, an async answer only when there is none yet.
void serve(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req, const coap_string_t* q,
           coap_pdu_t* resp, const resource& key,
           std::function<coap_reply(representation&)> answer = {});

/// Every handler as libcoap sees it: the request first passes the
/// transport's budgets (impl::admit), except when the handler is called
/// again for an answer already admitted (a deferred answer being sent: its
/// response is a CON at that point, never a request's ACK/NON; a
/// notification to an observer: runtime::notifying()).
template <coap_method_handler_t H>
void gated(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req, const coap_string_t* q,
           coap_pdu_t* resp) {
  auto& t = *server_of(s);
  if (!t.notifying() && coap_pdu_get_type(resp) != COAP_MESSAGE_CON && !t.admit(r, s, req, q, resp))
    return;
  if (!t.take_block1(r, s, req, q, resp, t.max_body(first_segment(req))))
    return;
  H(r, s, req, q, resp);
  t.release_body();
}

/// 4.05 with the allowed methods (the resource's user data).
void hnd_not_allowed(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                     const coap_string_t* q, coap_pdu_t* resp);

// -- /artifacts (server_artifacts.cpp) --------------------------------------------------
/// The artifact name of a request to /artifacts/<name> ("" when the path is
/// not of that shape).
std::string artifact_name(const coap_pdu_t* req);
void hnd_get_artifacts(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                       const coap_string_t* q, coap_pdu_t* resp);
void hnd_get_artifact(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                      const coap_string_t* q, coap_pdu_t* resp);
void hnd_put_artifact(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                      const coap_string_t* q, coap_pdu_t* resp);

// -- /audit (server_audit.cpp) --------------------------------------------------------
void hnd_get_audit(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                   const coap_string_t* q, coap_pdu_t* resp);
// -- /cluster (server_cluster.cpp) ------------------------------------------------------
void hnd_get_cluster(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                     const coap_string_t* q, coap_pdu_t* resp);
// -- /updates/<job>/spec (server_job_spec.cpp) ---------------------------------------
/// The job id of a request to /updates/<job>/spec ("" when the path is not
/// of that shape).
std::string job_spec_id(const coap_pdu_t* req);
/// A job's spec for one node, decided by the gateway (answered as a
/// separate response).
void hnd_get_job_spec(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                      const coap_string_t* q, coap_pdu_t* resp);
/// GET /nodes/<id>/history and /updates/<job>/history[?limit=&before=].
/// Returns false (nothing answered) when the request is not that.
bool hnd_history(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                 const coap_string_t* q, coap_pdu_t* resp, const std::vector<std::string>& parts);
/// DELETE /updates/<job> (what POST /updates {"action":"delete"} does) and
/// DELETE /nodes/<id> (decommission).
/// Returns false (nothing answered) when the request is not that.
bool hnd_delete_job(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                    const coap_string_t* q, coap_pdu_t* resp,
                    const std::vector<std::string>& parts);

}  // namespace coapfleet::transport::handlers
