// The blocking client's inside, shared by its files (blocking_client.cpp,
// blocking_upload.cpp): libcoap helpers and the exchange state its callbacks fill.
#pragma once

#include "transport/dtls_client.hpp"
#include "transport/dtls_pki.hpp"

#include <coap3/coap.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "transport/blocking_client.hpp"

namespace coapfleet::client {

namespace detail {

using clock = std::chrono::steady_clock;
using bytes = std::vector<uint8_t>;

constexpr uint8_t code_continue = (2 << 5) | 31;  // 2.31

/// libcoap's start-up, once per process, with its own logging silenced.
void startup_once();
/// A numeric host and port as a libcoap address.
bool resolve(const std::string& host, uint16_t port, coap_address_t& out);
uint32_t option_uint(const coap_pdu_t* pdu, uint16_t number, bool& present);
void add_uint_option(coap_optlist_t** list, uint16_t number, uint32_t value);
/// Uri-Path per '/' segment, Uri-Query per '&' item, Content-Format.
coap_optlist_t* request_options(const std::string& path, const std::string& query,
                                int content_format);
std::string describe_nack(coap_nack_reason_t reason);

}  // namespace detail

// -- the exchange state the libcoap callbacks fill in ---------------------------------

struct blocking_client::impl {
  using clock = detail::clock;
  using bytes = detail::bytes;

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
    auto cf = detail::option_uint(received, COAP_OPTION_CONTENT_FORMAT, present);
    r.content_format = present ? static_cast<int>(cf) : -1;
    auto max_age = detail::option_uint(received, COAP_OPTION_MAXAGE, present);
    if (present)
      r.max_age = max_age;
    detail::option_uint(received, COAP_OPTION_OBSERVE, r.observing);
    auto block1 = detail::option_uint(received, COAP_OPTION_BLOCK1, present);
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
    // A certificate refused in on_certificate says more than the NACK after it.
    if ((ours || reason == COAP_NACK_ICMP_ISSUE) && self->failure.empty())
      self->failure = detail::describe_nack(reason);
  }

  /// The server's certificate, once libcoap has verified it against --ca:
  /// it must also name the server (libcoap 4.3.1 checks no name).
  static int on_certificate(const char* cn, const uint8_t* der, size_t length, coap_session_t*,
                            unsigned depth, int validated, void* arg) {
    auto* self = static_cast<impl*>(arg);
    std::string name = cn ? cn : "";
    if (!validated) {
      self->failure = "the server's certificate (\"" + name.substr(0, 64)
                      + "\") does not verify against --ca " + self->server.certificate.ca;
      return 0;
    }
    if (depth > 0)
      return 1;
    if (!common::certificate_has_name(der, length, self->server.server_name)) {
      self->failure = "the server's certificate (\"" + name.substr(0, 64) + "\") does not name "
                      + self->server.server_name + " (give the name it carries with --server-name)";
      return 0;
    }
    return 1;
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
    if (!c || !detail::resolve(server.host, server.port, dst)) {
      error = "cannot set up a CoAP client for " + server.text;
      return nullptr;
    }
    if (server.secure && !server.certificate.empty()) {
      s = transport::open_pki_session(c, dst, server.certificate, on_certificate, this);
    } else if (server.secure) {
      if (server.credentials.empty()) {
        error = "coaps:// needs an identity and a key (--identity, --key-file) or a "
                "certificate (--cert, --key, --ca)";
        return nullptr;
      }
      s = transport::open_psk_session(c, dst, server.credentials);
    } else {
      s = coap_new_client_session(c, nullptr, &dst, COAP_PROTO_UDP);
    }
    if (!s)
      error = "cannot open a " + std::string(server.secure ? "DTLS session" : "UDP socket")
              + " to " + server.text;
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
    auto* opts = detail::request_options(path, query, content_format);
    if (observe >= 0)
      detail::add_uint_option(&opts, COAP_OPTION_OBSERVE, static_cast<uint32_t>(observe));
    if (block1)
      detail::add_uint_option(&opts, COAP_OPTION_BLOCK1, *block1);
    if (size1)
      detail::add_uint_option(&opts, COAP_OPTION_SIZE1, *size1);
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

}  // namespace coapfleet::client
