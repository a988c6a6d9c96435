// GET /nodes at any fleet size: pages and single nodes read by the reader
// (answered piggybacked, block-wise when large); the whole listing read from
// one snapshot and served block by block as the client asks, a chunk of it
// in memory at a time; the whole listing as one representation only for its
// observers on a fleet small enough to be observed whole.
#include <algorithm>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "transport/answer.hpp"
#include "transport/server_handlers.hpp"
#include "transport/server_impl.hpp"

namespace coapfleet::transport {

namespace {

constexpr int64_t listing_idle_ms = 60000;
constexpr size_t max_listings = 64;

coap_reply listing_error(uint16_t code, const std::string& text) {
  auto r = json_reply(code, model::encode_error(text, {{"field", "block2"}}));
  if (code == 503)
    r.max_age = 5;
  return r;
}

}  // namespace

bool server_transport::impl::listing_block(listing_stream& l, uint32_t num, uint8_t szx,
                                           coap_reply& out) {
  uint64_t size = uint64_t{16} << szx;
  uint64_t offset = uint64_t{num} * size;
  uint64_t end = l.base + l.buffer.size();
  if (offset < l.base) {
    out = listing_error(408, "block " + std::to_string(num)
                               + " is no longer kept: read the listing again from block 0");
    return true;
  }
  if (offset + size > end && !l.last)
    return false;  // not read from the snapshot yet
  if (offset >= end && (num > 0 || end > 0)) {
    out = listing_error(400, "block " + std::to_string(num) + " is beyond the listing ("
                               + std::to_string(end) + " bytes)");
    return true;
  }
  out = coap_reply{};
  out.code = 205;
  out.content_format = 50;
  out.etag = l.etag;
  auto take = std::min<uint64_t>(size, end - offset);
  out.payload = l.buffer.substr(static_cast<size_t>(offset - l.base), static_cast<size_t>(take));
  out.block2_num = static_cast<int32_t>(num);
  out.block2_szx = szx;
  out.block2_more = offset + take < end || !l.last;
  // Keep this block (the client may ask for it again) and what follows;
  // what lies before it goes in 32 KiB steps, not a copy of the buffer per block.
  if (offset - l.base >= 32 * 1024) {
    l.buffer.erase(0, static_cast<size_t>(offset - l.base));
    l.base = offset;
  }
  l.used_at = steady_millis();
  // Read on before the client gets to the end of what is here.
  if (!l.last && end - (offset + take) < 32 * 1024)
    ask_more(l);
  return true;
}

std::string server_transport::impl::listing_key(const coap_session_t* s, const coap_string_t* q) {
  auto who = peer_of(s);
  return who.address + "|" + std::to_string(who.port) + "|"
         + (q ? std::string(reinterpret_cast<const char*>(q->s), q->length) : "");
}

bool server_transport::impl::reading_listing(coap_resource_t* r, const coap_session_t* s,
                                             const coap_string_t* q) const {
  if (listings.empty())
    return false;
  auto* uri = coap_resource_get_uri_path(r);
  if (!uri || std::string_view(reinterpret_cast<const char*>(uri->s), uri->length) != "nodes")
    return false;
  return listings.count(listing_key(s, q)) != 0;
}

void server_transport::impl::ask_more(listing_stream& l) {
  if (l.asking || l.last)
    return;
  l.asking = true;
  caf::anon_send(reader, atom::more::value, l.sid);
}

void server_transport::impl::get_nodes(coap_resource_t* r, coap_session_t* s,
                                       const coap_pdu_t* req, const coap_string_t* q,
                                       coap_pdu_t* resp, const model::nodes_query& query) {
  using namespace handlers;
  if (is_deferred(s, req))
    return answer_async(r, s, req, q, resp, [](impl&, uint64_t, peer) {});
  coap_reply refusal;
  if (!allowed(s, req, model::access::read_fleet, {}, refusal))
    return reply_now(r, s, req, q, resp, refusal);
  if (query.limit != 0 || !query.node_id.empty())
    return answer_async(r, s, req, q, resp, [&query](impl& t, uint64_t id, peer) {
      caf::anon_send(t.reader, atom::list::value, id, query, now_millis());
    });
  // Observers of the whole listing get it as a representation (each
  // notification a new rendering), while the fleet is small enough for that.
  if (notifying())
    return serve(r, s, req, q, resp, resource{resource_kind::nodes, {}});
  if (query.status.empty() && query.health.empty() && has_observe(req)) {
    auto health = reps.find("health");
    bool small = health != reps.end() && health->second.health
                 && health->second.health->total_nodes <= observe_whole_max_nodes;
    if (small)
      return serve(r, s, req, q, resp, resource{resource_kind::nodes, {}});
  }
  // The whole listing (or the nodes of one status) block by block.
  coap_block_t b2{};
  bool has_b2 = coap_get_block(req, COAP_OPTION_BLOCK2, &b2) != 0;
  auto szx = static_cast<uint8_t>(has_b2 ? std::min<unsigned>(b2.szx, 6)
                                          : szx_at_most(answer_block_size(s)));
  auto key = listing_key(s, q);
  if (has_b2 && b2.num > 0) {
    auto i = listings.find(key);
    if (i == listings.end())
      return reply_now(r, s, req, q, resp,
                       listing_error(408, "no listing is being read by this endpoint (it "
                                          "expired, or block 0 was never asked for): read "
                                          "it again from block 0"));
    coap_reply block;
    if (listing_block(i->second, b2.num, szx, block))
      return reply_now(r, s, req, q, resp, block);
    auto num = b2.num;
    return answer_async(r, s, req, q, resp, [&key, num, szx](impl& t, uint64_t id, peer) {
      auto j = t.listings.find(key);
      if (j == t.listings.end())
        return t.complete(id, listing_error(408, "the listing expired: read it again from block 0"));
      j->second.waiting.push_back({id, num, szx});
      t.ask_more(j->second);
    });
  }
  if (listings.size() >= max_listings && !listings.count(key))
    return reply_now(r, s, req, q, resp,
                     listing_error(503, "too many listings are being read: retry after Max-Age"));
  answer_async(r, s, req, q, resp, [&key, &query, szx](impl& t, uint64_t id, peer) {
    t.openings[id] = opening_listing{key, szx};
    caf::anon_send(t.reader, atom::open::value, id, query, now_millis());
  });
}

void server_transport::impl::listing_opened(uint64_t id, listing_chunk c) {
  auto o = openings.find(id);
  if (o == openings.end()) {
    caf::anon_send(reader, atom::close::value, c.stream);
    return;
  }
  auto open = std::move(o->second);
  openings.erase(o);
  if (!c.error.empty()) {
    complete(id, c.error == "busy"
                   ? listing_error(503, "too many listings are being read: retry after Max-Age")
                   : json_reply(500, model::encode_error("cannot read the node listing: "
                                                         + c.error)));
    return;
  }
  // A new read from block 0 replaces this endpoint's earlier one.
  auto old = listings.find(open.key);
  if (old != listings.end()) {
    caf::anon_send(reader, atom::close::value, old->second.sid);
    listing_by_sid.erase(old->second.sid);
    for (auto& w : old->second.waiting)
      complete(w.id, listing_error(408, "the listing was read again from block 0"));
    listings.erase(old);
  }
  auto& l = listings[open.key];
  l.sid = c.stream;
  l.buffer = std::move(c.bytes);
  l.last = c.last;
  l.etag = (etag_salt ^ (c.stream * 0x9E3779B97F4A7C15ull)) | 1;
  l.used_at = steady_millis();
  if (!l.last)
    listing_by_sid[l.sid] = open.key;
  coap_reply first;
  if (!listing_block(l, 0, open.szx, first)) {
    // A filter few nodes match: the first chunk ended at the reader's row
    // budget before block 0 was full. It is answered as more comes.
    l.waiting.push_back({id, 0, open.szx});
    return ask_more(l);
  }
  complete(id, std::move(first));
  if (l.last && l.buffer.size() <= (size_t{16} << open.szx))
    listings.erase(open.key);  // all of it went in block 0
}

void server_transport::impl::listing_more(listing_chunk c) {
  auto k = listing_by_sid.find(c.stream);
  if (k == listing_by_sid.end())
    return;
  auto i = listings.find(k->second);
  if (i == listings.end() || i->second.sid != c.stream) {
    listing_by_sid.erase(k);
    return;
  }
  auto& l = i->second;
  l.asking = false;
  if (!c.error.empty()) {
    bool expired = c.error.find("expired") != std::string::npos;
    for (auto& w : l.waiting)
      complete(w.id, expired ? listing_error(408, c.error)
                             : listing_error(500, "cannot read the node listing: " + c.error));
    listing_by_sid.erase(k);
    listings.erase(i);
    return;
  }
  l.buffer += c.bytes;
  l.last = c.last;
  if (l.last)
    listing_by_sid.erase(k);
  auto waiting = std::move(l.waiting);
  l.waiting.clear();
  for (auto& w : waiting) {
    coap_reply block;
    if (listing_block(l, w.num, w.szx, block))
      complete(w.id, std::move(block));
    else
      l.waiting.push_back(w);
  }
  if (!l.waiting.empty())
    ask_more(l);
}

void server_transport::impl::sweep_listings(int64_t now) {
  if (now - listings_swept_at < 5000)
    return;
  listings_swept_at = now;
  for (auto i = listings.begin(); i != listings.end();) {
    if (now - i->second.used_at > listing_idle_ms && i->second.waiting.empty()) {
      caf::anon_send(reader, atom::close::value, i->second.sid);
      listing_by_sid.erase(i->second.sid);
      i = listings.erase(i);
    } else {
      ++i;
    }
  }
}

}  // namespace coapfleet::transport
