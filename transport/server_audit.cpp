// GET /audit (operators and trusted plain sources only): served at once from
// the newest records, which the persistence actor hands over at start and
// after every commit that stored some (before the actions they record are
// acknowledged). An older page than that is read from the store by the
// gateway (a separate response, cut to one datagram).
#include <algorithm>

#include "common/log.hpp"
#include "transport/server_handlers.hpp"
#include "transport/server_impl.hpp"

namespace coapfleet::transport {

void server_transport::impl::take_audit(model::audit_page page) {
  audit_tail.clear();
  for (auto& r : page.records) {
    if (audit_tail.size() >= cfg.audit_tail)
      break;
    audit_tail.push_back({r.seq, model::encode_audit_record(r)});
  }
  audit_complete = page.next == 0 && audit_tail.size() == page.records.size();
  audit_loaded = true;
  ++audit_version;
  CF_DEBUG("transport", "audit: ", audit_tail.size(), " newest records",
           audit_complete ? " (all)" : "");
}

void server_transport::impl::add_audit(std::vector<model::audit_record> records) {
  for (auto& r : records) {
    if (!audit_tail.empty() && r.seq <= audit_tail.front().seq)
      continue;  // already here (the tail was read after this commit)
    audit_tail.push_front({r.seq, model::encode_audit_record(r)});
  }
  while (audit_tail.size() > cfg.audit_tail) {
    audit_tail.pop_back();
    // The store dropped it too when it keeps no more than the tail holds.
    if (cfg.audit_tail < cfg.audit_keep)
      audit_complete = false;
  }
  ++audit_version;
}

bool server_transport::impl::audit_cut(const model::audit_query& q, coap_reply& out) {
  if (!audit_loaded)
    return false;
  // The first record below the cursor (the tail is sorted by seq, descending).
  auto first = q.before == 0 ? audit_tail.begin()
                             : std::partition_point(audit_tail.begin(), audit_tail.end(),
                                                    [&](const audited& a) {
                                                      return a.seq >= q.before;
                                                    });
  size_t available = static_cast<size_t>(audit_tail.end() - first);
  size_t n = std::min<size_t>(q.limit, available);
  if (n < q.limit && !audit_complete)
    return false;  // older records are in the store only
  std::vector<std::string_view> page;
  page.reserve(n);
  for (size_t i = 0; i < n; ++i)
    page.push_back(first[static_cast<std::ptrdiff_t>(i)].json);
  uint64_t next = 0;
  if (n > 0 && (available > n || !audit_complete))
    next = first[static_cast<std::ptrdiff_t>(n - 1)].seq;
  out = json_reply(205, model::encode_audit_page(page, next));
  out.etag = etag_salt + audit_version;
  return true;
}

namespace handlers {

void hnd_get_audit(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                   const coap_string_t* q, coap_pdu_t* resp) {
  if (is_deferred(s, req))  // an older page, read by the gateway
    return answer_async(r, s, req, q, resp, [](impl&, uint64_t, peer) {});
  auto& t = *server_of(s);
  coap_reply refused;
  if (!t.allowed(s, req, model::access::read_audit, {}, refused))
    return reply_now(r, s, req, q, resp, refused);
  std::string_view query;
  if (q && q->length > 0)
    query = std::string_view(reinterpret_cast<const char*>(q->s), q->length);
  auto aq = model::decode_audit_query(query);
  if (!aq.ok())
    return reply_now(r, s, req, q, resp, problem_reply(400, aq.err));
  coap_reply page;
  if (t.audit_cut(aq.value, page))
    return reply_now(r, s, req, q, resp, page);
  answer_async(r, s, req, q, resp, [&aq](impl& t, uint64_t id, peer from) {
    caf::anon_send(t.gateway, atom::audit::value, id, aq.value, std::move(from));
  });
}

}  // namespace handlers

}  // namespace coapfleet::transport
