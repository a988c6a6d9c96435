// Observations (RFC 7641) kept by the runtime, keyed by endpoint and token;
// notifications built by calling the resource's GET handler again with the
// registration rebuilt, sent NON with every fifth (and one a day) CON;
// block-wise notifications sliced here, their later blocks served from the
// notification's own snapshot. See runtime.hpp for why not libcoap's.
#include <algorithm>
#include <string>
#include <utility>

#include "actors/replies.hpp"
#include "common/log.hpp"
#include "model/json.hpp"
#include "transport/runtime_internal.hpp"

namespace coapfleet::transport {

namespace {

constexpr unsigned non_between_con = 4;            // RFC 7641 §4.5: CON now and then
constexpr int64_t con_at_least_every_ms = 86'400'000;  // ... and at least once a day
/// How long a client that reads a block-wise answer may pause between blocks
/// before a change is notified over it.
constexpr int64_t fetch_window_ms = 5000;

std::string token_key(const coap_session_t* s, coap_bin_const_t token) {
  std::string k(reinterpret_cast<const char*>(&s), sizeof s);
  k.append(reinterpret_cast<const char*>(token.s), token.length);
  return k;
}

std::string query_text(const coap_string_t* q) {
  return q ? std::string(reinterpret_cast<const char*>(q->s), q->length) : std::string();
}

void add_uint(coap_pdu_t* pdu, uint16_t number, uint64_t value) {
  uint8_t buf[8];
  coap_add_option(pdu, number, coap_encode_var_safe8(buf, sizeof buf, value), buf);
}

/// Fills `resp` with block `num` (size 16 << szx) of `data`, or all of it
/// when it fits one block and block 0 is asked for; Observe when `number`
/// is set. Options in ascending order, as the PDU wants them.
void write_answer(coap_pdu_t* resp, const coap_reply& reply, const uint8_t* data, size_t size,
                  unsigned num, unsigned szx, const uint32_t* number, bool blockwise) {
  size_t block = size_t{16} << szx;
  size_t offset = size_t{num} * block;
  if (num > 0 && offset >= size) {
    coap_pdu_set_code(resp, static_cast<coap_pdu_code_t>(COAP_RESPONSE_CODE(400)));
    add_uint(resp, COAP_OPTION_CONTENT_FORMAT, 50);
    auto body = model::encode_error("block " + std::to_string(num) + " is beyond the body ("
                                      + std::to_string(size) + " bytes)",
                                    {{"field", "block2"}});
    coap_add_data(resp, body.size(), reinterpret_cast<const uint8_t*>(body.data()));
    return;
  }
  coap_pdu_set_code(resp, static_cast<coap_pdu_code_t>(COAP_RESPONSE_CODE(reply.code)));
  if (reply.etag != 0) {
    uint8_t buf[8];
    coap_add_option(resp, COAP_OPTION_ETAG, coap_encode_var_safe8(buf, sizeof buf, reply.etag),
                    buf);
  }
  if (number)
    add_uint(resp, COAP_OPTION_OBSERVE, *number);
  add_uint(resp, COAP_OPTION_CONTENT_FORMAT, reply.content_format);
  if (reply.max_age != UINT32_MAX)
    add_uint(resp, COAP_OPTION_MAXAGE, reply.max_age);
  size_t len = std::min(block, size - std::min(offset, size));
  if (blockwise) {
    bool more = offset + len < size;
    add_uint(resp, COAP_OPTION_BLOCK2, uint64_t{num} << 4 | (more ? 8u : 0u) | szx);
    if (num == 0)
      add_uint(resp, COAP_OPTION_SIZE2, size);
  } else {
    len = size;
  }
  if (len > 0)
    coap_add_data(resp, len, data + offset);
}

}  // namespace

void runtime::make_observable(coap_resource_t* r, coap_method_handler_t get) {
  get_handlers_[r] = get;
  coap_add_attr(r, coap_make_str_const("obs"), nullptr, 0);
}

void runtime::make_observable_paths(coap_resource_t* r, coap_method_handler_t get) {
  get_handlers_[r] = get;
  path_resources_.insert(r);
}

bool runtime::observable_path(const std::string&) const { return false; }

void runtime::first_observed(const std::string&) {}

void runtime::unobserved(const std::string&) {}

std::string runtime::observable_path_of(const coap_resource_t* r, const coap_pdu_t* req) const {
  if (!is_observable(r))
    return {};
  if (path_resources_.count(r) == 0) {
    auto* uri = coap_resource_get_uri_path(const_cast<coap_resource_t*>(r));
    return uri ? std::string(reinterpret_cast<const char*>(uri->s), uri->length) : std::string();
  }
  std::string path;
  coap_opt_iterator_t it;
  coap_option_iterator_init(req, &it, COAP_OPT_ALL);
  while (coap_opt_t* opt = coap_option_next(&it)) {
    if (it.number != COAP_OPTION_URI_PATH)
      continue;
    if (!path.empty())
      path += '/';
    path.append(reinterpret_cast<const char*>(coap_opt_value(opt)), coap_opt_length(opt));
  }
  return observable_path(path) ? path : std::string();
}

void runtime::end_observation_of(coap_session_t* s, const coap_pdu_t* pdu) {
  auto i = observation_by_token_.find(token_key(s, coap_pdu_get_token(pdu)));
  if (i != observation_by_token_.end())
    end_observation(i->second);
}

uint64_t runtime::observe_(coap_resource_t* r, const std::string& path, coap_session_t* s,
                           const coap_pdu_t* req, const coap_string_t* q) {
  auto key = token_key(s, coap_pdu_get_token(req));
  auto known = observation_by_token_.find(key);
  if (known != observation_by_token_.end() && observations_.at(known->second).path != path) {
    end_observation(known->second);  // the token now observes another resource
    known = observation_by_token_.end();
  }
  uint64_t id;
  auto p = peer_of(s);
  if (known == observation_by_token_.end()) {
    if (observations_.size() >= max_observations_
        || observations_per_source_[p.address] >= max_observations_per_source_) {
      CF_DEBUG("transport", "observation of ", p.address, " refused: at the limit");
      return 0;
    }
    id = next_observation_++;
    auto& o = observations_[id];
    o.resource = r;
    o.path = path;
    o.session = coap_session_reference(s);
    auto token = coap_pdu_get_token(req);
    o.token.assign(reinterpret_cast<const char*>(token.s), token.length);
    o.source = p.address;
    o.endpoint = p.address + '|' + std::to_string(p.port);
    observation_by_token_[key] = id;
    auto& observers = observers_of_[path];
    observers.push_back(id);
    ++observations_per_source_[p.address];
    if (observers.size() == 1)
      first_observed(path);
  } else {
    id = known->second;
  }
  auto& o = observations_.at(id);
  o.query = query_text(q);
  o.options.clear();
  coap_opt_iterator_t it;
  coap_option_iterator_init(req, &it, COAP_OPT_ALL);
  while (coap_opt_t* opt = coap_option_next(&it)) {
    if (it.number == COAP_OPTION_BLOCK2 || it.number == COAP_OPTION_OBSERVE)
      continue;
    o.options.emplace_back(it.number,
                           std::string(reinterpret_cast<const char*>(coap_opt_value(opt)),
                                       coap_opt_length(opt)));
  }
  return id;
}

void runtime::end_observation(uint64_t id) {
  auto i = observations_.find(id);
  if (i == observations_.end())
    return;
  auto& o = i->second;
  observation_by_token_.erase(token_key(o.session, coap_bin_const_t{
                                                     o.token.size(),
                                                     reinterpret_cast<const uint8_t*>(o.token.data())}));
  if (!o.mid_key.empty())
    observation_by_mid_.erase(o.mid_key);
  auto list = observers_of_.find(o.path);
  if (list != observers_of_.end()) {
    auto& ids = list->second;
    ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
    if (ids.empty()) {
      observers_of_.erase(list);
      observe_numbers_.erase(o.path);  // a path nobody observes costs nothing
      unobserved(o.path);
    }
  }
  auto per = observations_per_source_.find(o.source);
  if (per != observations_per_source_.end() && --per->second == 0)
    observations_per_source_.erase(per);
  auto* session = o.session;
  observations_.erase(i);
  coap_session_release(session);
}

bool runtime::answer_observed(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                              const coap_string_t* q, coap_pdu_t* resp, const coap_reply& reply) {
  if (!r || !is_observable(r))
    return false;
  const std::string path = observable_path_of(r, req);
  if (path.empty())
    return false;
  coap_opt_iterator_t it;
  coap_opt_t* opt = coap_check_option(req, COAP_OPTION_OBSERVE, &it);
  const long obs = opt ? static_cast<long>(coap_decode_var_bytes(coap_opt_value(opt),
                                                                 coap_opt_length(opt)))
                       : -1;
  coap_block_t b2;
  const bool has_b2 = coap_get_block(req, COAP_OPTION_BLOCK2, &b2) != 0;
  const bool ok = reply.code / 100 == 2;
  std::shared_ptr<const shared_bytes> body = reply.shared_body;
  auto whole = [&]() -> std::shared_ptr<const shared_bytes> {
    if (!body)
      body = std::make_shared<shared_string>(reply.payload);
    return body;
  };
  const size_t size = reply.shared_body ? reply.shared_body->size() : reply.payload.size();
  auto default_szx = [&] { return szx_at_most(answer_block_size(s)); };
  // Answers `o`'s registration or notification: whole, or its block 0 with
  // the body kept for the later blocks.
  auto answer = [&](observation& o) {
    o.number = observe_numbers_.try_emplace(path, 2u).first->second;
    auto& b = *whole();
    bool blockwise = size > (size_t{16} << o.szx);
    o.body = blockwise ? body : nullptr;
    o.fetching_until = blockwise ? steady_millis() + fetch_window_ms : 0;
    o.etag = reply.etag;
    o.content_format = reply.content_format;
    write_answer(resp, reply, b.data(), b.size(), 0, o.szx, &o.number, blockwise);
    return true;
  };

  if (notifying_) {
    auto o = observations_.find(notifying_);
    if (o == observations_.end() || !ok)
      return false;  // an error goes out as it is, and ends the observation
    return answer(o->second);
  }
  if (has_b2 && b2.num > 0) {
    // A later block: of the observation's own snapshot when this endpoint
    // observes the resource (with this query), so that all blocks are of
    // one version; with its Observe number when asked with Observe set.
    auto list = observers_of_.find(path);
    if (list == observers_of_.end())
      return false;
    auto q_text = query_text(q);
    for (auto id : list->second) {
      auto& o = observations_.at(id);
      if (o.session != s || o.query != q_text || !o.body)
        continue;
      coap_reply snap;
      snap.code = 205;
      snap.etag = o.etag;
      snap.content_format = o.content_format;
      unsigned szx = std::min<unsigned>(b2.szx, 6);  // 7 (BERT) is not for UDP
      write_answer(resp, snap, o.body->data(), o.body->size(), b2.num, szx,
                   obs == 0 ? &o.number : nullptr, true);
      bool more = (uint64_t{b2.num} + 1) * (uint64_t{16} << szx) < o.body->size();
      o.fetching_until = more ? steady_millis() + fetch_window_ms : 0;
      return true;
    }
    return false;
  }
  if (obs == 1 || (obs == 0 && !ok)) {
    // Deregistration, or an error that ends the observation (RFC 7641 §3.2).
    end_observation_of(s, req);
    return false;
  }
  if (obs != 0)
    return false;
  auto id = observe_(r, path, s, req, q);
  if (id == 0)
    return false;  // at the limit: a plain answer, no Observe option
  auto& o = observations_.at(id);
  o.szx = has_b2 ? std::min<unsigned>(b2.szx, 6) : default_szx();
  return answer(o);
}

void runtime::notify_observers(const std::string& path) {
  auto list = observers_of_.find(path);
  if (list == observers_of_.end())
    return;
  auto& number = observe_numbers_.try_emplace(path, 2u).first->second;
  number = (number + 1) & 0xFFFFFFu;
  auto ids = list->second;  // the handler may end observations
  auto now = steady_millis();
  for (auto id : ids) {
    auto found = observations_.find(id);
    if (found == observations_.end())
      continue;
    auto& o = found->second;
    if (now < o.fetching_until) {
      // Its client is still reading the blocks of the last answer: this
      // change goes out once it has (or has stopped), not over it.
      if (!o.due) {
        o.due = true;
        due_observations_.push_back(id);
      }
      continue;
    }
    auto get = get_handlers_.find(o.resource);
    if (get != get_handlers_.end())
      notify_one(get->second, id, now);
  }
}

void runtime::notify_due() {
  if (due_observations_.empty())
    return;
  auto now = steady_millis();
  std::vector<uint64_t> still;
  auto due = std::move(due_observations_);
  due_observations_.clear();
  for (auto id : due) {
    auto found = observations_.find(id);
    if (found == observations_.end() || !found->second.due)
      continue;
    if (now < found->second.fetching_until) {
      still.push_back(id);
      continue;
    }
    auto get = get_handlers_.find(found->second.resource);
    if (get != get_handlers_.end())
      notify_one(get->second, id, now);
  }
  due_observations_.insert(due_observations_.end(), still.begin(), still.end());
}

void runtime::notify_one(coap_method_handler_t get, uint64_t id, int64_t now) {
  {
    auto found = observations_.find(id);
    if (found == observations_.end())
      return;
    auto& o = found->second;
    o.due = false;
    auto* r = o.resource;
    coap_bin_const_t token{o.token.size(), reinterpret_cast<const uint8_t*>(o.token.data())};
    if (coap_find_async(o.session, token) != nullptr)
      return;  // its registration is still being answered
    bool con = o.non_since_con >= non_between_con || now - o.last_con_ms >= con_at_least_every_ms;
    auto max = coap_session_max_pdu_size(o.session);
    coap_pdu_t* req = coap_pdu_init(COAP_MESSAGE_CON, COAP_REQUEST_CODE_GET, 0, max);
    coap_pdu_t* resp = coap_pdu_init(con ? COAP_MESSAGE_CON : COAP_MESSAGE_NON,
                                     static_cast<coap_pdu_code_t>(0),
                                     coap_new_message_id(o.session), max);
    if (!req || !resp) {
      if (req)
        coap_delete_pdu(req);
      if (resp)
        coap_delete_pdu(resp);
      return;
    }
    coap_add_token(req, token.length, token.s);
    coap_add_token(resp, token.length, token.s);
    for (auto& [num, value] : o.options)
      coap_add_option(req, num, value.size(), reinterpret_cast<const uint8_t*>(value.data()));
    coap_string_t* q = o.query.empty() ? nullptr
                                       : coap_new_string(o.query.size());
    if (q)
      std::copy(o.query.begin(), o.query.end(), q->s);
    notifying_ = id;
    get(r, o.session, req, q, resp);
    notifying_ = 0;
    if (q)
      coap_delete_string(q);
    coap_delete_pdu(req);
    auto code = coap_pdu_get_code(resp);
    if (code == 0) {  // nothing to send (no representation yet)
      coap_delete_pdu(resp);
      return;
    }
    auto* session = o.session;
    auto endpoint = o.endpoint;
    bool final_answer = COAP_RESPONSE_CLASS(code) != 2;
    if (final_answer)
      end_observation(id);  // the error is its last message (RFC 7641 §3.2)
    auto mid = coap_send(session, resp);
    if (final_answer)
      return;
    auto again = observations_.find(id);
    if (again == observations_.end())
      return;
    if (mid == COAP_INVALID_MID) {
      // The session cannot send any more (closed, or its peer is gone):
      // nothing will ever reach this observer.
      end_observation(id);
      return;
    }
    if (!again->second.mid_key.empty())
      observation_by_mid_.erase(again->second.mid_key);
    again->second.mid_key = endpoint + '|' + std::to_string(mid);
    observation_by_mid_[again->second.mid_key] = id;
    if (con) {
      again->second.non_since_con = 0;
      again->second.last_con_ms = now;
    } else {
      ++again->second.non_since_con;
    }
  }
}

void runtime::end_observations(const std::string& path, uint16_t final_code) {
  auto list = observers_of_.find(path);
  if (list == observers_of_.end())
    return;
  auto ids = list->second;
  for (auto id : ids) {
    auto found = observations_.find(id);
    if (found == observations_.end())
      continue;
    auto& o = found->second;
    auto* resp = coap_pdu_init(COAP_MESSAGE_CON,
                               static_cast<coap_pdu_code_t>(COAP_RESPONSE_CODE(final_code)),
                               coap_new_message_id(o.session), coap_session_max_pdu_size(o.session));
    auto* session = coap_session_reference(o.session);
    if (resp) {
      coap_add_token(resp, o.token.size(), reinterpret_cast<const uint8_t*>(o.token.data()));
      add_uint(resp, COAP_OPTION_CONTENT_FORMAT, 50);
      auto body = model::encode_error("the observed resource is gone");
      coap_add_data(resp, body.size(), reinterpret_cast<const uint8_t*>(body.data()));
    }
    end_observation(id);
    if (resp)
      coap_send(session, resp);
    coap_session_release(session);
  }
  observe_numbers_.erase(path);
}

void runtime::on_empty_message(const std::string& endpoint, uint8_t type, uint16_t mid) {
  if (type != COAP_MESSAGE_RST)
    return;
  auto i = observation_by_mid_.find(endpoint + '|' + std::to_string(mid));
  if (i == observation_by_mid_.end())
    return;
  CF_DEBUG("transport", "observation ended by a reset from ", endpoint);
  end_observation(i->second);
}

}  // namespace coapfleet::transport
