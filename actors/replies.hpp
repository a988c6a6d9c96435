// CoAP answers built from model values and error values: what the gateways
// send back to their transport (and the transport's own early answers).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "actors/interfaces.hpp"

namespace coapfleet {

/// A JSON answer (Content-Format 50) with the given code (class*100+detail).
coap_reply json_reply(uint16_t code, std::string payload);

/// A text/plain answer (Content-Format 0).
coap_reply text_reply(uint16_t code, std::string text);

/// The CoAP code of an application error (4.00 for bad_request, ...).
uint16_t response_code_of(api_errc code);

/// Maps an error value to a CoAP answer: the code of its api_errc, a JSON
/// body {"error", "field", <key>: <value>}; 5.03 with Max-Age for timeouts
/// and unavailable actors; 5.00 for anything else.
coap_reply error_reply(const caf::error& err);

/// The resource a URI path names (path_of's inverse, a leading '/' allowed):
/// "nodes/<id>/health" is the health of node <id>, whatever <id> holds;
/// false for a path that names none.
bool resource_of_path(std::string_view path, resource& out);

/// The access policy applied to a request's sender (model::authorize): no
/// error when allowed, else 4.01 (no identity: "authentication required")
/// or 4.03 naming the identity and what it may not do; the body's "role"
/// names the sender's role.
caf::error check_access(const peer& from, model::access a, const std::string& target = {});

/// The audit record of a request from `from` answered with `answer` at `at`:
/// outcome its code ("2.01"), detail the "error" of a 4.xx/5.xx JSON body
/// (cut to model::audit_detail_max). Never reads anything but that message.
model::audit_record audit_of(const peer& from, std::string action, std::string target,
                             const coap_reply& answer, model::millis at);

/// 2.05 with a page of the audit log, ended early where its body would pass
/// `max_bytes` (at least one record), `next` going on from where it ended.
coap_reply audit_page_reply(model::audit_page page, size_t max_bytes);
/// A page of node-state history cut to at most `max_bytes` (at least one
/// entry); `next` moves back when entries are left out.
coap_reply history_page_reply(const model::history_query& q, model::history_page page,
                              size_t max_bytes);

}  // namespace coapfleet
