// The runtime as a CoAP client: requests to agents (notifications, the
// gateway's forwarded calls) and the answers or failures libcoap reports.
#include <algorithm>
#include <string>
#include <utility>

#include "common/log.hpp"
#include "transport/dtls_client.hpp"
#include "transport/runtime_internal.hpp"

// Exported by libcoap 3 (VER_3) but declared only in its internal headers:
// cancels everything libcoap still queues for a session.
extern "C" void coap_session_disconnected(coap_session_t* session, coap_nack_reason_t reason);

namespace coapfleet::transport {

namespace {
/// The largest answer a client request reassembles (the agent's requests
/// get small answers; large bodies are fetched a block at a time).
constexpr size_t max_answer_body = 4u << 20;
}  // namespace

coap_response_t on_response(coap_session_t* session, const coap_pdu_t*,
                            const coap_pdu_t* received, const coap_mid_t) {
  auto* rt = runtime_of(session);
  auto key = session_key(session, token_string(coap_pdu_get_token(received)));
  auto o = rt->outgoing_.find(key);
  if (o == rt->outgoing_.end())
    return COAP_RESPONSE_OK;
  client_response r;
  auto code = coap_pdu_get_code(received);
  r.code = static_cast<uint16_t>((code >> 5) * 100 + (code & 0x1f));
  size_t len = 0, offset = 0, total = 0;
  const uint8_t* data = nullptr;
  if (coap_get_data_large(received, &len, &data, &offset, &total) && len > 0)
    r.payload.assign(reinterpret_cast<const char*>(data), len);
  coap_block_t b2;
  if (!o->second.manual_blocks && coap_get_block(received, COAP_OPTION_BLOCK2, &b2)
      && (b2.m || b2.num > 0)) {
    // libcoap hands a block-wise answer over block by block (the contexts
    // run without COAP_BLOCK_SINGLE_BODY) and asks for the next itself.
    auto& body = o->second.body;
    if (offset != body.size() || body.size() + r.payload.size() > max_answer_body) {
      client_response bad;
      bad.error = "bad block-wise answer from " + o->second.where + ": block at byte "
                  + std::to_string(offset) + " after " + std::to_string(body.size())
                  + " bytes (limit " + std::to_string(max_answer_body) + ")";
      rt->finish(key, std::move(bad));
      return COAP_RESPONSE_OK;
    }
    body += r.payload;
    if (b2.m)
      return COAP_RESPONSE_OK;
    r.payload = std::move(body);
  }
  coap_opt_iterator_t it;
  if (coap_opt_t* opt = coap_check_option(received, COAP_OPTION_ETAG, &it))
    r.etag.assign(reinterpret_cast<const char*>(coap_opt_value(opt)), coap_opt_length(opt));
  coap_block_t block;
  if (coap_get_block(received, COAP_OPTION_BLOCK2, &block)) {
    r.block2_num = static_cast<int32_t>(block.num);
    r.block2_more = block.m;
    r.block2_szx = static_cast<uint8_t>(block.szx);
  }
  if (coap_opt_t* opt = coap_check_option(received, COAP_OPTION_SIZE2, &it))
    r.size2 = coap_decode_var_bytes(coap_opt_value(opt), coap_opt_length(opt));
  if (coap_opt_t* opt = coap_check_option(received, COAP_OPTION_MAXAGE, &it))
    r.max_age = coap_decode_var_bytes(coap_opt_value(opt), coap_opt_length(opt));
  rt->finish(key, std::move(r));
  return COAP_RESPONSE_OK;
}

void on_nack(coap_session_t* session, const coap_pdu_t* sent, const coap_nack_reason_t reason,
             const coap_mid_t mid) {
  auto* rt = runtime_of(session);
  if (sent && COAP_RESPONSE_CLASS(coap_pdu_get_code(sent)) >= 2) {
    // A notification nobody took (reset, or no acknowledgement after all
    // retransmissions): that observation ends (RFC 7641 §4.5).
    rt->end_observation_of(session, sent);
    return;
  }
  std::string key;
  if (sent)
    key = session_key(session, token_string(coap_pdu_get_token(sent)));
  if (!rt->outgoing_.count(key)) {
    auto i = rt->outgoing_by_mid_.find(session_key(session, std::to_string(mid)));
    if (i == rt->outgoing_by_mid_.end())
      return;
    key = i->second;
  }
  auto o = rt->outgoing_.find(key);
  if (o == rt->outgoing_.end())
    return;
  client_response r;
  r.error = std::string("no answer from ") + o->second.where + ": "
            + (reason == COAP_NACK_TOO_MANY_RETRIES ? "no answer after all retransmissions"
               : reason == COAP_NACK_NOT_DELIVERABLE ? "not deliverable"
               : reason == COAP_NACK_ICMP_ISSUE      ? "ICMP error (port unreachable?)"
               : reason == COAP_NACK_RST             ? "reset by peer"
                                                     : "transport failure");
  rt->finish(key, std::move(r));
  // libcoap keeps a request that met an ICMP error queued and retransmits
  // it later, although its sender has been told it failed (and has sent
  // a newer one, or given up): the session is reset after this I/O turn.
  if (reason == COAP_NACK_ICMP_ISSUE && session
      && coap_session_get_type(session) == COAP_SESSION_TYPE_CLIENT
      && rt->session_use_.count(session)
      && std::find(rt->to_reset_.begin(), rt->to_reset_.end(), session) == rt->to_reset_.end())
    rt->to_reset_.push_back(coap_session_reference(session));
}

void runtime::reset_session(coap_session_t* session) {
  // Not reused: the next request opens a fresh session (and, over DTLS, a
  // fresh handshake, which a restarted peer needs anyway).
  bool owned = false;
  for (auto j = sessions_.begin(); j != sessions_.end(); ++j)
    if (j->second == session) {
      sessions_.erase(j);
      owned = true;
      break;
    }
  session_use_.erase(session);
  // What still waits for an answer on it (a separate response promised by
  // an empty ACK) cannot be matched to a later session: it fails now.
  std::vector<std::string> keys;
  for (auto& [key, o] : outgoing_)
    if (o.session == session)
      keys.push_back(key);
  for (auto& key : keys) {
    client_response r;
    r.error = "no answer from " + outgoing_[key].where + ": the peer went away (ICMP error)";
    finish(key, std::move(r));
  }
  coap_session_disconnected(session, COAP_NACK_NOT_DELIVERABLE);
  if (owned)
    coap_session_release(session);
}

void runtime::expire_requests() {
  auto resets = std::move(to_reset_);
  to_reset_.clear();
  for (auto* s : resets) {
    reset_session(s);
    coap_session_release(s);  // the reference taken in on_nack
  }
  auto now = steady_millis();
  while (!deadlines_.empty() && deadlines_.front().first <= now) {
    auto [deadline, key] = std::move(deadlines_.front());
    deadlines_.pop_front();
    auto o = outgoing_.find(key);
    if (o == outgoing_.end() || o->second.deadline != deadline)
      continue;  // answered (the key may since name a newer request)
    client_response r;
    r.error = "no answer from " + o->second.where + " within "
              + std::to_string(request_timeout_ms_ / 1000) + " s";
    finish(key, std::move(r));
  }
}

void runtime::finish(const std::string& key, client_response r) {
  auto i = outgoing_.find(key);
  if (i == outgoing_.end())
    return;
  auto done = std::move(i->second.done);
  outgoing_by_mid_.erase(i->second.mid_key);
  auto* session = i->second.session;
  outgoing_.erase(i);
  // A session per agent would keep a socket per agent open for good: beyond
  // a few, release a client session once nothing is outstanding on it.
  constexpr size_t kept_sessions = 64;
  auto use = session ? session_use_.find(session) : session_use_.end();
  if (use != session_use_.end() && --use->second == 0 && sessions_.size() > kept_sessions) {
    session_use_.erase(use);
    for (auto j = sessions_.begin(); j != sessions_.end(); ++j)
      if (j->second == session) {
        sessions_.erase(j);
        break;
      }
    coap_session_release(session);
  }
  if (done)
    done(std::move(r));
}

void runtime::set_client_credentials(const std::string& ip, uint16_t port,
                                     common::psk_credentials credentials) {
  auto where = ip + ":" + std::to_string(port);
  auto& have = client_psk_[where];
  if (have.identity == credentials.identity && have.key == credentials.key)
    return;
  have = std::move(credentials);
  client_pki_.erase(where);
  drop_idle_sessions_to(where);
}

void runtime::drop_idle_sessions_to(const std::string& where) {
  // A session opened with other credentials (or none) is not reused; one in
  // use stays with its requests and goes when they are done.
  for (auto i = sessions_.begin(); i != sessions_.end();) {
    auto sep = i->first.find('|');
    if (sep != std::string::npos && i->first.compare(sep + 1, std::string::npos, where) == 0
        && session_use_[i->second] == 0) {
      session_use_.erase(i->second);
      coap_session_release(i->second);
      i = sessions_.erase(i);
    } else {
      ++i;
    }
  }
}

bool runtime::listening_address_for(const coap_address_t& dst, coap_address_t& local) const {
  if (listen_port_ == 0)
    return false;
  const auto family = dst.addr.sa.sa_family;
  if (make_address(listen_addr_, listen_port_, local) && local.addr.sa.sa_family == family)
    return true;
  // Listening on every address of the other family: every address of this one.
  if (listen_addr_ == "::" || listen_addr_ == "0.0.0.0")
    return make_address(family == AF_INET ? "0.0.0.0" : "::", listen_port_, local);
  return false;
}

coap_session_t* runtime::client_session(coap_context_t* c, const std::string& ip, uint16_t port,
                                        std::string& error) {
  auto key = session_key(c, ip + ":" + std::to_string(port));
  auto s = sessions_.find(key);
  if (s != sessions_.end())
    return s->second;
  coap_address_t dst;
  if (!make_address(ip, port, dst)) {
    error = ip + " is not an IP address";
    return nullptr;
  }
  auto psk = client_psk_.find(ip + ":" + std::to_string(port));
  const bool pki = client_pki_.count(ip + ":" + std::to_string(port)) != 0;
  coap_session_t* session = nullptr;
  coap_address_t source;
  const coap_address_t* from = nullptr;
  if (!client_source_.empty() && make_address(client_source_, 0, source)
      && source.addr.sa.sa_family == dst.addr.sa.sa_family)
    from = &source;
  if (pki) {
    session = open_client_pki(c, dst, ip + ":" + std::to_string(port), from);
  } else if (psk != client_psk_.end()) {
    session = open_psk_session(c, dst, psk->second, from);
  } else if (from) {
    session = coap_new_client_session(c, from, &dst, COAP_PROTO_UDP);
  } else {
    coap_address_t local;
    if (c == ctx && from_listen_port_ && listening_address_for(dst, local)) {
      session = coap_new_client_session(c, &local, &dst, COAP_PROTO_UDP);
      if (!session)
        CF_WARN("transport", "cannot send to ", ip, ":", port, " from ", listen_addr_, ":",
                listen_port_, "; from another port (an agent will refuse it)");
    }
    if (!session)
      session = coap_new_client_session(c, nullptr, &dst, COAP_PROTO_UDP);
  }
  if (!session) {
    error = pki || psk != client_psk_.end() ? "cannot open a DTLS session"
                                            : "cannot create a CoAP session";
    return nullptr;
  }
  sessions_.emplace(key, session);
  return session;
}

namespace {

/// One option per non-empty piece of `text` between `sep`s ("a/b" -> a, b).
void add_split_options(coap_pdu_t* pdu, uint16_t number, const std::string& text, char sep) {
  size_t start = 0;
  while (start < text.size()) {
    auto end = text.find(sep, start);
    if (end == std::string::npos)
      end = text.size();
    if (end > start)
      coap_add_option(pdu, number, end - start,
                      reinterpret_cast<const uint8_t*>(text.data() + start));
    start = end + 1;
  }
}

}  // namespace

void runtime::send_request(const client_request& req, response_callback done) {
  auto where = req.host + ":" + std::to_string(req.port);
  auto fail = [&](const std::string& why) {
    client_response r;
    r.error = "cannot send to " + where + ": " + why;
    if (done)
      done(std::move(r));
  };
  bool manual_blocks = req.block2_num >= 0;
  std::string error;
  auto* session = client_session(manual_blocks ? raw_context() : ctx, req.host, req.port, error);
  if (!session)
    return fail(error);
  auto* pdu = coap_new_pdu(COAP_MESSAGE_CON, static_cast<coap_pdu_code_t>(req.method), session);
  if (!pdu)
    return fail("cannot allocate a PDU");
  uint8_t token[8];
  size_t token_len = 0;
  coap_session_new_token(session, &token_len, token);
  coap_add_token(pdu, token_len, token);
  // Options in ascending number: Uri-Path (11), Content-Format (12), Uri-Query (15).
  add_split_options(pdu, COAP_OPTION_URI_PATH, req.path, '/');
  uint8_t buf[8];
  if (!req.payload.empty())
    coap_add_option(pdu, COAP_OPTION_CONTENT_FORMAT,
                    coap_encode_var_safe(buf, sizeof buf, req.content_format), buf);
  add_split_options(pdu, COAP_OPTION_URI_QUERY, req.query, '&');
  if (manual_blocks)
    coap_add_option(pdu, COAP_OPTION_BLOCK2,
                    coap_encode_var_safe(buf, sizeof buf,
                                         (static_cast<unsigned>(req.block2_num) << 4)
                                           | (req.block2_szx & 7)),
                    buf);
  if (!req.payload.empty()) {
    auto* body = new std::string(req.payload);
    coap_add_data_large_request(session, pdu, body->size(),
                                reinterpret_cast<const uint8_t*>(body->data()), release_string,
                                body);
  }
  auto key = session_key(session, std::string(reinterpret_cast<char*>(token), token_len));
  auto deadline = steady_millis() + request_timeout_ms_;
  outgoing_[key] = outgoing{std::move(done), where, {}, session, deadline, manual_blocks, {}};
  deadlines_.emplace_back(deadline, key);
  ++session_use_[session];
  auto mid = coap_send(session, pdu);
  if (mid == COAP_INVALID_MID) {
    client_response r;
    r.error = "cannot send to " + where + ": send failed";
    finish(key, std::move(r));
    return;
  }
  auto mid_key = session_key(session, std::to_string(mid));
  outgoing_[key].mid_key = mid_key;
  outgoing_by_mid_[mid_key] = key;
}

}  // namespace coapfleet::transport
