// The operator CLI's synchronous libcoap client: see blocking_client.hpp.
#include "transport/blocking_client.hpp"

#include <coap3/coap.h>
#include <netdb.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

namespace coapfleet::client {

namespace {

using clock = std::chrono::steady_clock;
using bytes = std::vector<uint8_t>;

constexpr uint8_t code_continue = (2 << 5) | 31;  // 2.31

void startup_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    coap_startup();
    // libcoap's own warnings (ICMP errors, retransmissions) are not for
    // operators; failures come back as values and are reported by the CLI.
    coap_set_log_level(LOG_EMERG);
  });
}

bool resolve(const std::string& host, uint16_t port, coap_address_t& out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || !found)
    return false;
  coap_address_init(&out);
  out.size = found->ai_addrlen;
  std::memcpy(&out.addr.sa, found->ai_addr, found->ai_addrlen);
  ::freeaddrinfo(found);
  return true;
}

uint32_t option_uint(const coap_pdu_t* pdu, uint16_t number, bool& present) {
  coap_opt_iterator_t it;
  coap_opt_t* opt = coap_check_option(pdu, number, &it);
  present = opt != nullptr;
  return opt ? coap_decode_var_bytes(coap_opt_value(opt), coap_opt_length(opt)) : 0;
}

void add_uint_option(coap_optlist_t** list, uint16_t number, uint32_t value) {
  uint8_t buf[4];
  auto len = coap_encode_var_safe(buf, sizeof(buf), value);
  coap_insert_optlist(list, coap_new_optlist(number, len, buf));
}

/// Uri-Path per '/' segment, Uri-Query per '&' item, Content-Format.
coap_optlist_t* request_options(const std::string& path, const std::string& query,
                                int content_format) {
  coap_optlist_t* list = nullptr;
  auto add_split = [&](const std::string& text, char sep, uint16_t number) {
    size_t start = 0;
    while (start <= text.size()) {
      auto end = text.find(sep, start);
      if (end == std::string::npos)
        end = text.size();
      if (end > start)
        coap_insert_optlist(&list, coap_new_optlist(number, end - start,
                                                    reinterpret_cast<const uint8_t*>(
                                                      text.data() + start)));
      start = end + 1;
    }
  };
  add_split(path, '/', COAP_OPTION_URI_PATH);
  if (content_format >= 0)
    add_uint_option(&list, COAP_OPTION_CONTENT_FORMAT, static_cast<uint32_t>(content_format));
  add_split(query, '&', COAP_OPTION_URI_QUERY);
  return list;
}

std::string describe_nack(coap_nack_reason_t reason) {
  switch (reason) {
    case COAP_NACK_TOO_MANY_RETRIES: return "no acknowledgement after all retransmissions";
    case COAP_NACK_NOT_DELIVERABLE: return "the request could not be sent";
    case COAP_NACK_RST: return "the server reset the exchange";
    case COAP_NACK_ICMP_ISSUE: return "unreachable (ICMP error: nothing listens on that port, or no route)";
    default: return "the exchange failed";
  }
}

}  // namespace

std::string response::code_text() const {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%d.%02d", code >> 5, code & 0x1F);
  return buf;
}

std::optional<server_uri> parse_server_uri(const std::string& text, std::string& error) {
  const std::string scheme = "coap://";
  if (text.compare(0, scheme.size(), scheme) != 0) {
    error = "the server must be coap://HOST[:PORT] (coaps is not supported yet): " + text;
    return std::nullopt;
  }
  std::string rest = text.substr(scheme.size());
  while (!rest.empty() && rest.back() == '/')
    rest.pop_back();
  if (rest.find('/') != std::string::npos) {
    error = "the server URI takes no path: " + text;
    return std::nullopt;
  }
  server_uri out;
  std::string port_text;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) {
      error = "unterminated IPv6 literal in " + text;
      return std::nullopt;
    }
    out.host = rest.substr(1, close - 1);
    auto after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        error = "expected :PORT after the IPv6 literal in " + text;
        return std::nullopt;
      }
      port_text = after.substr(1);
    }
  } else {
    auto colon = rest.find(':');
    out.host = rest.substr(0, colon);
    if (colon != std::string::npos)
      port_text = rest.substr(colon + 1);
  }
  if (out.host == "localhost")
    out.host = "127.0.0.1";
  coap_address_t probe;
  if (out.host.empty() || !resolve(out.host, 1, probe)) {
    error = "the host of " + text + " must be an IP address literal or localhost";
    return std::nullopt;
  }
  if (!port_text.empty()) {
    char* end = nullptr;
    long port = std::strtol(port_text.c_str(), &end, 10);
    if (*end != '\0' || port < 1 || port > 65535) {
      error = "invalid port in " + text;
      return std::nullopt;
    }
    out.port = static_cast<uint16_t>(port);
  }
  out.text = scheme + rest;
  return out;
}

// -- the exchange state the libcoap callbacks fill in ---------------------------------

struct blocking_client::impl {
  server_uri server;
  std::chrono::milliseconds timeout;

  coap_context_t* ctx = nullptr;      ///< libcoap block mode: whole bodies
  coap_session_t* session = nullptr;
  coap_context_t* raw_ctx = nullptr;  ///< no block mode: manual Block1 uploads
  coap_session_t* raw_session = nullptr;

  // The exchange being waited for.
  bytes token;
  coap_mid_t mid = COAP_INVALID_MID;
  std::vector<response> answers;  ///< answers (notifications) not yet consumed
  std::string failure;            ///< a NACK of the exchange

  ~impl() {
    if (session)
      coap_session_release(session);
    if (raw_session)
      coap_session_release(raw_session);
    if (ctx)
      coap_free_context(ctx);
    if (raw_ctx)
      coap_free_context(raw_ctx);
  }

  static impl* of(coap_session_t* s) {
    return static_cast<impl*>(coap_get_app_data(coap_session_get_context(s)));
  }

  static coap_response_t on_response(coap_session_t* s, const coap_pdu_t*,
                                     const coap_pdu_t* received, const coap_mid_t) {
    auto* self = of(s);
    auto tok = coap_pdu_get_token(received);
    if (!self || self->token.empty() || tok.length != self->token.size()
        || std::memcmp(tok.s, self->token.data(), tok.length) != 0)
      return COAP_RESPONSE_FAIL;  // not ours (a stale observation): RST ends it
    response r;
    r.code = static_cast<uint8_t>(coap_pdu_get_code(received));
    bool present = false;
    auto cf = option_uint(received, COAP_OPTION_CONTENT_FORMAT, present);
    r.content_format = present ? static_cast<int>(cf) : -1;
    auto max_age = option_uint(received, COAP_OPTION_MAXAGE, present);
    if (present)
      r.max_age = max_age;
    option_uint(received, COAP_OPTION_OBSERVE, r.observing);
    auto block1 = option_uint(received, COAP_OPTION_BLOCK1, present);
    if (present)
      r.block1 = block1;
    size_t len = 0, offset = 0, total = 0;
    const uint8_t* data = nullptr;
    if (coap_get_data_large(received, &len, &data, &offset, &total) && data)
      r.body.assign(reinterpret_cast<const char*>(data), len);
    self->answers.push_back(std::move(r));
    return COAP_RESPONSE_OK;
  }

  static void on_nack(coap_session_t* s, const coap_pdu_t* sent, const coap_nack_reason_t reason,
                      const coap_mid_t mid) {
    auto* self = of(s);
    if (!self || self->token.empty())
      return;
    bool ours = mid == self->mid;
    if (sent) {
      auto tok = coap_pdu_get_token(sent);
      ours = ours || (tok.length == self->token.size()
                      && std::memcmp(tok.s, self->token.data(), tok.length) == 0);
    }
    // An ICMP error belongs to whatever is in flight to that address.
    if (ours || reason == COAP_NACK_ICMP_ISSUE)
      self->failure = describe_nack(reason);
  }

  coap_context_t* new_context(uint8_t block_mode) {
    auto* c = coap_new_context(nullptr);
    if (!c)
      return nullptr;
    coap_set_app_data(c, this);
    coap_context_set_block_mode(c, block_mode);
    coap_register_response_handler(c, on_response);
    coap_register_nack_handler(c, on_nack);
    return c;
  }

  /// The session of the block-mode context (`raw` false) or the raw one.
  coap_session_t* session_for(bool raw, std::string& error) {
    auto& c = raw ? raw_ctx : ctx;
    auto& s = raw ? raw_session : session;
    if (s)
      return s;
    if (!c)
      c = new_context(raw ? 0 : COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
    coap_address_t dst;
    if (!c || !resolve(server.host, server.port, dst)) {
      error = "cannot set up a CoAP client for " + server.text;
      return nullptr;
    }
    s = coap_new_client_session(c, nullptr, &dst, COAP_PROTO_UDP);
    if (!s)
      error = "cannot open a UDP socket to " + server.text;
    return s;
  }

  void new_token(coap_session_t* s) {
    uint8_t buf[8];
    size_t len = sizeof(buf);
    coap_session_new_token(s, &len, buf);
    token.assign(buf, buf + len);
    answers.clear();
    failure.clear();
    mid = COAP_INVALID_MID;
  }

  /// Sends one request with the current token. `observe` < 0: no Observe
  /// option. `block1`: a manual Block1 value (raw context), else none.
  bool send(coap_session_t* s, coap_pdu_code_t code, const std::string& path,
            const std::string& query, const std::string* body, int content_format,
            int observe, std::optional<uint32_t> block1, std::optional<uint32_t> size1,
            std::string& error) {
    auto* pdu = coap_pdu_init(COAP_MESSAGE_CON, code, coap_new_message_id(s),
                              coap_session_max_pdu_size(s));
    if (!pdu) {
      error = "out of memory";
      return false;
    }
    coap_add_token(pdu, token.size(), token.data());
    auto* opts = request_options(path, query, content_format);
    if (observe >= 0)
      add_uint_option(&opts, COAP_OPTION_OBSERVE, static_cast<uint32_t>(observe));
    if (block1)
      add_uint_option(&opts, COAP_OPTION_BLOCK1, *block1);
    if (size1)
      add_uint_option(&opts, COAP_OPTION_SIZE1, *size1);
    coap_add_optlist_pdu(pdu, &opts);
    coap_delete_optlist(opts);
    if (body && !body->empty()) {
      bool ok;
      if (block1) {
        ok = coap_add_data(pdu, body->size(), reinterpret_cast<const uint8_t*>(body->data()));
      } else {
        // libcoap may still be sending blocks after we stopped waiting: it
        // owns a copy and frees it when done.
        auto* copy = new std::string(*body);
        ok = coap_add_data_large_request(
          s, pdu, copy->size(), reinterpret_cast<const uint8_t*>(copy->data()),
          [](coap_session_t*, void* p) { delete static_cast<std::string*>(p); }, copy);
      }
      if (!ok) {
        coap_delete_pdu(pdu);
        error = "cannot add the request body";
        return false;
      }
    }
    mid = coap_send(s, pdu);
    if (mid == COAP_INVALID_MID) {
      error = "cannot send to " + server.text;
      return false;
    }
    return true;
  }

  /// Runs libcoap until an answer is queued, a NACK came, `deadline` or an
  /// interruption.
  bool wait(coap_context_t* c, clock::time_point deadline,
            const volatile std::sig_atomic_t* interrupted = nullptr) {
    while (answers.empty() && failure.empty() && !(interrupted && *interrupted)) {
      auto now = clock::now();
      if (now >= deadline)
        return false;
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
      // Bounded: libcoap's epoll wait returns early on traffic.
      coap_io_process(c, static_cast<uint32_t>(std::clamp<long long>(ms, 1, 1000)));
    }
    return !answers.empty();
  }

  std::string no_answer() const {
    if (!failure.empty())
      return "no answer from " + server.text + ": " + failure;
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%g", std::chrono::duration<double>(timeout).count());
    return "no answer from " + server.text + " within " + buf + " s";
  }

  response take() {
    auto r = std::move(answers.front());
    answers.erase(answers.begin());
    return r;
  }
};

// -- the public calls ---------------------------------------------------------------

blocking_client::blocking_client(server_uri server, std::chrono::milliseconds timeout)
  : impl_(std::make_unique<impl>()) {
  startup_once();
  impl_->server = std::move(server);
  impl_->timeout = timeout;
}

blocking_client::~blocking_client() = default;

const server_uri& blocking_client::server() const {
  return impl_->server;
}

std::chrono::milliseconds blocking_client::timeout() const {
  return impl_->timeout;
}

namespace {

coap_pdu_code_t code_of(method m) {
  switch (m) {
    case method::get: return COAP_REQUEST_CODE_GET;
    case method::post: return COAP_REQUEST_CODE_POST;
    case method::put: return COAP_REQUEST_CODE_PUT;
    case method::del: return COAP_REQUEST_CODE_DELETE;
  }
  return COAP_REQUEST_CODE_GET;
}

}  // namespace

outcome blocking_client::request(method m, const std::string& path, const std::string& query,
                                 const std::string& body, int content_format) {
  auto& d = *impl_;
  outcome out;
  auto* s = d.session_for(false, out.failure);
  if (!s)
    return out;
  d.new_token(s);
  if (!d.send(s, code_of(m), path, query, &body, content_format, -1, std::nullopt,
              std::nullopt, out.failure))
    return out;
  if (d.wait(d.ctx, clock::now() + d.timeout))
    out.answer = d.take();
  else
    out.failure = d.no_answer();
  d.token.clear();
  return out;
}

observe_outcome blocking_client::observe(const std::string& path, const std::string& query,
                                         const notification_handler& on_notification,
                                         const volatile std::sig_atomic_t* interrupted) {
  auto& d = *impl_;
  observe_outcome out;
  auto* s = d.session_for(false, out.failure);
  if (!s)
    return out;
  bool registered = false;  // the server confirmed the observation (Observe option)
  auto register_now = [&] {
    d.new_token(s);
    return d.send(s, COAP_REQUEST_CODE_GET, path, query, nullptr, -1, 0, std::nullopt,
                  std::nullopt, out.failure);
  };
  if (!register_now())
    return out;
  auto answer_by = clock::now() + d.timeout;  // a (re-)registration awaits its answer
  auto refresh_at = clock::time_point::max();
  for (;;) {
    auto deadline = std::min(answer_by, refresh_at);
    if (!d.wait(d.ctx, deadline, interrupted)) {
      if (interrupted && *interrupted) {
        out.how = observe_outcome::interrupted;
        break;
      }
      if (!d.failure.empty() || clock::now() >= answer_by) {
        out.how = observe_outcome::no_answer;
        out.failure = d.no_answer();
        d.token.clear();
        return out;
      }
      // Max-Age passed without a notification, or the path is only readable:
      // ask again (a new token; the old observation is reset when it speaks).
      if (!register_now())
        return out;
      answer_by = clock::now() + d.timeout;
      refresh_at = clock::time_point::max();
      continue;
    }
    auto r = d.take();
    answer_by = clock::time_point::max();
    if (!r.success()) {
      out.how = observe_outcome::ended;
      out.last = std::move(r);
      d.token.clear();
      return out;
    }
    registered = r.observing;
    // RFC 7641 3.3.1: a notification is fresh for Max-Age; a little leeway
    // for the next one to travel, then ask again.
    refresh_at = clock::now()
                 + (registered ? std::chrono::milliseconds(r.max_age * 1000 + 2000)
                               : std::chrono::milliseconds(1000));
    bool keep = on_notification(r);
    out.last = std::move(r);
    if (!keep) {
      out.how = observe_outcome::stopped;
      break;
    }
  }
  if (registered) {
    // Deregister (GET with Observe=1, same token) and give the answer a moment.
    coap_binary_t tok{d.token.size(), d.token.data()};
    d.answers.clear();
    d.failure.clear();
    if (!coap_cancel_observe(s, &tok, COAP_MESSAGE_CON)) {
      std::string ignored;
      d.send(s, COAP_REQUEST_CODE_GET, path, query, nullptr, -1, 1, std::nullopt,
             std::nullopt, ignored);
    }
    d.wait(d.ctx, clock::now() + std::min<std::chrono::milliseconds>(d.timeout,
                                                                      std::chrono::seconds(2)));
  }
  d.token.clear();
  return out;
}

outcome blocking_client::upload(const std::string& path, const std::string& body,
                                size_t block_size, const upload_progress& progress) {
  auto& d = *impl_;
  outcome out;
  auto* s = d.session_for(true, out.failure);
  if (!s)
    return out;
  unsigned szx = 6;
  while (szx > 0 && (size_t{16} << szx) > block_size)
    --szx;
  size_t offset = 0;
  d.new_token(s);
  for (;;) {
    size_t size = size_t{16} << szx;
    uint32_t num = static_cast<uint32_t>(offset / size);
    std::string chunk = body.substr(offset, size);
    bool more = offset + chunk.size() < body.size();
    uint32_t block1 = num << 4 | (more ? 0x8u : 0u) | szx;
    std::optional<uint32_t> size1;
    if (num == 0)
      size1 = static_cast<uint32_t>(body.size());
    d.answers.clear();
    d.failure.clear();
    if (!d.send(s, COAP_REQUEST_CODE_PUT, path, "", &chunk, -1, -1, block1, size1,
                out.failure))
      return out;
    // Every block carries the same token: a late duplicate 2.31 of an
    // earlier block (its number) is not the answer to this one.
    std::optional<response> answer;
    auto deadline = clock::now() + d.timeout;
    while (!answer && d.wait(d.raw_ctx, deadline)) {
      auto r = d.take();
      if (r.code == code_continue && r.block1 && (*r.block1 >> 4) != num)
        continue;
      answer = std::move(r);
    }
    if (!answer) {
      out.failure = d.no_answer();
      d.token.clear();
      return out;
    }
    auto& r = *answer;
    if (r.code == code_continue && more) {
      offset += chunk.size();
      // The server may ask for smaller blocks (RFC 7959 2.3), never larger.
      if (r.block1 && (*r.block1 & 0x7u) < szx)
        szx = *r.block1 & 0x7u;
      if (progress)
        progress(offset, body.size());
      continue;
    }
    if (r.success() && progress)
      progress(body.size(), body.size());
    out.answer = std::move(r);
    d.token.clear();
    return out;
  }
}

}  // namespace coapfleet::client
