// The main server's /artifacts resources: the listing, and one resource per
// artifact served block-wise from a shared mapping of its file.
#include "common/log.hpp"
#include "transport/server_handlers.hpp"
#include "transport/server_impl.hpp"

namespace coapfleet::transport {

namespace handlers {

std::string artifact_name(const coap_pdu_t* req) {
  auto parts = uri_path_segments(req);
  if (parts.size() != 2 || parts[0] != "artifacts")
    return {};
  return parts[1];
}

void hnd_get_artifacts(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                       const coap_string_t* q, coap_pdu_t* resp) {
  serve(r, s, req, q, resp, resource{resource_kind::artifacts, {}});
}

/// Serves an artifact block-wise from the store's mapping of its file (the
/// store hands it over when the artifact is stored or found at start); the
/// ETag (from its SHA-256) lets a client that resumes check it gets the same
/// version.
void hnd_get_artifact(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                      const coap_string_t* q, coap_pdu_t* resp) {
  auto& t = *server_of(s);
  coap_reply refusal;
  if (!t.allowed(s, req, model::access::read_job, {}, refusal))  // agents download what jobs need
    return reply_now(r, s, req, q, resp, refusal);
  auto name = artifact_name(req);
  auto found = t.artifacts.find(name);
  if (found == t.artifacts.end() || !found->second.body)
    return reply_now(r, s, req, q, resp,
                     json_reply(404, model::encode_error("artifact not found",
                                                         {{"field", "artifact"},
                                                          {"name", name}})));
  coap_reply reply;
  reply.content_format = 42;
  reply.etag = found->second.etag;
  reply.shared_body = found->second.body;
  reply_now(r, s, req, q, resp, reply);
}

/// PUT /artifacts/<name>: the body arrives whole (the runtime reassembles Block1);
/// the store writes it atomically and answers with its size and SHA-256.
void hnd_put_artifact(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                      const coap_string_t* q, coap_pdu_t* resp) {
  auto& t = *server_of(s);
  if (coap_find_async(s, coap_pdu_get_token(req)) != nullptr)
    return answer_async(r, s, req, q, resp, [](impl&, uint64_t, peer) {});
  auto name = artifact_name(req);
  if (!model::valid_artifact_name(name))
    return reply_now(r, s, req, q, resp,
                     json_reply(400, model::encode_error(std::string("artifact name must be ")
                                                           + model::artifact_name_rule,
                                                         {{"field", "name"}})));
  coap_opt_iterator_t it;
  if (coap_opt_t* opt = coap_check_option(req, COAP_OPTION_CONTENT_FORMAT, &it)) {
    auto cf = coap_decode_var_bytes(coap_opt_value(opt), coap_opt_length(opt));
    if (cf != 0 && cf != 42 && cf != 50)
      return reply_now(r, s, req, q, resp,
                       json_reply(415, model::encode_error(
                                         "unsupported content format " + std::to_string(cf)
                                           + ": send application/octet-stream (42) or none",
                                         {{"field", "content-format"}})));
  }
  auto body = t.request_body(req);
  if (body.empty())
    return reply_now(r, s, req, q, resp,
                     json_reply(400, model::encode_error(
                                       "empty body: send the file with coap-client -m put "
                                       "-b 1024 -f FILE coap://HOST/artifacts/NAME")));
  if (body.size() > t.cfg.max_artifact)
    return reply_now(r, s, req, q, resp,
                     json_reply(413, model::encode_error(
                                       "artifact too large: " + std::to_string(body.size())
                                       + " bytes, the limit is "
                                       + std::to_string(t.cfg.max_artifact))));
  artifact_upload up{name, std::string(body), {}};
  answer_async(r, s, req, q, resp, [&up](impl& t, uint64_t id, peer from) {
    caf::anon_send(t.gateway, atom::upload::value, id, std::move(up), std::move(from));
  });
}

/// DELETE /artifacts/<name>: the gateway decides (4.09 while an unfinished
/// job needs it).
void hnd_delete_artifact(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                         const coap_string_t* q, coap_pdu_t* resp) {
  if (is_deferred(s, req))
    return answer_async(r, s, req, q, resp, [](impl&, uint64_t, peer) {});
  auto name = artifact_name(req);
  answer_async(r, s, req, q, resp, [&name](impl& t, uint64_t id, peer from) {
    caf::anon_send(t.gateway, atom::artifact::value, id, std::move(name), std::move(from));
  });
}

}  // namespace handlers

using namespace handlers;

bool server_transport::impl::add_artifact_resource(const std::string& name) {
  if (artifact_resources.count(name))
    return true;
  auto path = "artifacts/" + name;
  auto* uri = coap_new_str_const(reinterpret_cast<const uint8_t*>(path.data()), path.size());
  auto* r = coap_resource_init(uri, COAP_RESOURCE_FLAGS_RELEASE_URI);
  if (!r)
    return false;
  coap_resource_set_userdata(r, const_cast<char*>("GET, PUT, DELETE"));
  // A deleted artifact keeps its resource (GET answers 4.04 without its
  // contents; an upload fills it again): a resource is never freed under a
  // transfer that still refers to it.
  register_methods(r, gated<hnd_not_allowed>, gated<hnd_get_artifact>, nullptr,
                   gated<hnd_put_artifact>, gated<hnd_delete_artifact>);
  coap_add_attr(r, coap_make_str_const("rt"), coap_make_str_const("\"coapfleet.artifact\""), 0);
  coap_add_attr(r, coap_make_str_const("ct"), coap_make_str_const("42"), 0);
  coap_add_resource(ctx, r);
  artifact_resources[name] = r;
  return true;
}


}  // namespace coapfleet::transport
