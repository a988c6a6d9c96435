#include "actors/replies.hpp"

#include <cstdlib>
#include <tuple>
#include <utility>
#include <vector>

#include "model/json.hpp"
#include "model/json_value.hpp"

namespace coapfleet {

coap_reply json_reply(uint16_t code, std::string payload) {
  coap_reply r;
  r.code = code;
  r.content_format = 50;
  r.payload = std::move(payload);
  return r;
}

coap_reply text_reply(uint16_t code, std::string text) {
  coap_reply r;
  r.code = code;
  r.content_format = 0;
  r.payload = std::move(text);
  return r;
}

uint16_t response_code_of(api_errc code) {
  switch (code) {
    case api_errc::bad_request: return 400;
    case api_errc::unauthorized: return 401;
    case api_errc::forbidden: return 403;
    case api_errc::not_found: return 404;
    case api_errc::conflict: return 409;
    case api_errc::too_large: return 413;
    case api_errc::internal: return 500;
    case api_errc::unavailable: return 503;
    case api_errc::too_many: return 429;
  }
  return 500;
}

coap_reply error_reply(const caf::error& err) {
  if (err.category() == api_category) {
    auto c = response_code_of(static_cast<api_errc>(err.code()));
    std::string what, field, key, value;
    auto& ctx = err.context();
    if (ctx.match_elements<std::string, std::string, std::string, std::string>()) {
      what = ctx.get_as<std::string>(0);
      field = ctx.get_as<std::string>(1);
      key = ctx.get_as<std::string>(2);
      value = ctx.get_as<std::string>(3);
    }
    std::vector<std::pair<std::string, std::string>> extra;
    if (!field.empty())
      extra.emplace_back("field", field);
    if (!key.empty())
      extra.emplace_back(key, value);
    auto r = json_reply(c, model::encode_error(what, extra));
    if (c == 503)
      r.max_age = 5;
    if (c == 429 && key == "retry_after_seconds")
      r.max_age = static_cast<uint32_t>(std::strtoul(value.c_str(), nullptr, 10));
    return r;
  }
  if (err == caf::sec::request_timeout) {
    auto r = json_reply(503, model::encode_error("server busy: the request timed out, retry later"));
    r.max_age = 5;
    return r;
  }
  if (err == caf::sec::request_receiver_down) {
    auto r = json_reply(503, model::encode_error("the actor that owns this is restarting, retry "
                                                 "shortly"));
    r.max_age = 2;
    return r;
  }
  return json_reply(500, model::encode_error("internal error: " + caf::to_string(err)));
}

}  // namespace coapfleet

namespace coapfleet {

const char* to_string(resource_kind k) {
  switch (k) {
    case resource_kind::health: return "health";
    case resource_kind::nodes: return "nodes";
    case resource_kind::updates: return "updates";
    case resource_kind::job_status: return "job_status";
    case resource_kind::node_health: return "node_health";
    case resource_kind::node_changes: return "node_changes";
    case resource_kind::job_changes: return "job_changes";
    case resource_kind::system: return "system";
    case resource_kind::artifacts: return "artifacts";
  }
  return "?";
}

std::string path_of(const resource& r) {
  switch (r.kind) {
    case resource_kind::job_status: return "updates/" + r.id + "/status";
    case resource_kind::node_health: return "nodes/" + r.id + "/health";
    case resource_kind::node_changes: return "nodes/changes";
    case resource_kind::job_changes: return "updates/changes";
    default: return to_string(r.kind);
  }
}

bool resource_of_path(std::string_view path, resource& out) {
  if (!path.empty() && path.front() == '/')
    path.remove_prefix(1);
  // The nested ones: "nodes/<id>/health", "updates/<id>/status".
  for (auto [head, tail, kind] : {std::tuple{std::string_view("nodes/"),
                                             std::string_view("/health"),
                                             resource_kind::node_health},
                                  {"updates/", "/status", resource_kind::job_status}}) {
    if (path.size() > head.size() + tail.size() && path.substr(0, head.size()) == head
        && path.substr(path.size() - tail.size()) == tail) {
      out = resource{kind, std::string(path.substr(head.size(),
                                                   path.size() - head.size() - tail.size()))};
      return true;
    }
  }
  for (auto kind : {resource_kind::health, resource_kind::nodes, resource_kind::updates,
                    resource_kind::node_changes, resource_kind::job_changes,
                    resource_kind::system, resource_kind::artifacts})
    if (path == path_of(resource{kind, {}})) {
      out = resource{kind, {}};
      return true;
    }
  return false;
}

caf::error check_access(const peer& from, model::access a, const std::string& target) {
  auto role = model::to_string(from.role);
  switch (model::authorize(from.principal(), a, target)) {
    case model::verdict::allow:
      return {};
    case model::verdict::unauthenticated:
      return make_api_error(api_errc::unauthorized,
                            std::string("authentication required to ") + model::to_string(a)
                              + ": use coaps:// with a key of the right role (or a trusted "
                                "network)",
                            "", "role", role);
    case model::verdict::forbidden:
      break;
  }
  std::string who = from.identity.empty() ? from.address : from.identity;
  std::string what = who + " (" + role + ") may not " + model::to_string(a);
  if (!target.empty() && from.role == model::role::node)
    what += " for " + target + ": a node acts for itself only";
  return make_api_error(api_errc::forbidden, std::move(what), "", "role", role);
}

}  // namespace coapfleet

namespace coapfleet {

model::audit_record audit_of(const peer& from, std::string action, std::string target,
                             const coap_reply& answer, model::millis at) {
  model::audit_record r;
  r.at = at;
  r.identity = from.identity;
  r.r = from.role;
  r.secure = from.secure;
  r.address = from.address;
  r.port = from.port;
  r.action = std::move(action);
  r.target = std::move(target);
  r.outcome = model::code_text(answer.code);
  if (answer.code >= 300) {
    if (answer.content_format == 50) {
      auto doc = model::json_document::parse(answer.payload);
      if (doc.ok())
        r.detail = doc.root()["error"].as_string();
    } else {
      r.detail = answer.payload;
    }
    if (r.detail.size() > model::audit_detail_max)
      r.detail.resize(model::audit_detail_max);
  }
  return r;
}

namespace {

/// Encodes rows until `max_bytes` (at least one); moves `next` back to the
/// last row taken when rows are left out.
template <class Row, class Encode, class Seq>
std::vector<std::string> fit_rows(const std::vector<Row>& rows, size_t max_bytes, uint64_t& next,
                                  Encode encode, Seq seq) {
  std::vector<std::string> texts;
  size_t size = 64;
  for (auto& r : rows) {
    auto text = encode(r);
    if (!texts.empty() && size + text.size() + 1 > max_bytes)
      break;
    size += text.size() + 1;
    texts.push_back(std::move(text));
  }
  if (texts.size() < rows.size())
    next = seq(rows[texts.size() - 1]);
  return texts;
}

}  // namespace

coap_reply audit_page_reply(model::audit_page page, size_t max_bytes) {
  auto texts = fit_rows(page.records, max_bytes, page.next, model::encode_audit_record,
                        [](const model::audit_record& r) { return r.seq; });
  std::vector<std::string_view> views(texts.begin(), texts.end());
  return json_reply(205, model::encode_audit_page(views, page.next));
}

coap_reply history_page_reply(const model::history_query& q, model::history_page page,
                              size_t max_bytes) {
  auto texts = fit_rows(page.entries, max_bytes - std::min(max_bytes, q.id.size() + 16),
                        page.next, model::encode_history_entry,
                        [](const model::history_entry& e) { return e.seq; });
  std::vector<std::string_view> views(texts.begin(), texts.end());
  return json_reply(205, model::encode_history_page(q, views, page.next));
}

}  // namespace coapfleet
