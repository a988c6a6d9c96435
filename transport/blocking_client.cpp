// The operator CLI's synchronous libcoap client: see blocking_client.hpp.
#include "transport/blocking_exchange.hpp"

#include <coap3/coap.h>
#include <netdb.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

namespace coapfleet::client {

using namespace detail;

namespace detail {

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
    case COAP_NACK_TLS_FAILED:
      return "the DTLS handshake failed (a wrong key, or a certificate that did not verify)";
    case COAP_NACK_ICMP_ISSUE: return "unreachable (ICMP error: nothing listens on that port, or no route)";
    default: return "the exchange failed";
  }
}

}  // namespace detail

std::string response::code_text() const {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%d.%02d", code >> 5, code & 0x1F);
  return buf;
}

std::optional<server_uri> parse_server_uri(const std::string& text, std::string& error) {
  bool secure = text.compare(0, 8, "coaps://") == 0;
  const std::string scheme = secure ? "coaps://" : "coap://";
  if (text.compare(0, scheme.size(), scheme) != 0) {
    error = "the server must be coap://HOST[:PORT] or coaps://HOST[:PORT]: " + text;
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
  out.secure = secure;
  out.port = secure ? 5684 : 5683;
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
  out.written_host = out.host;
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
                                         const volatile std::sig_atomic_t* interrupted,
                                         std::chrono::milliseconds max_silence) {
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
    auto fresh = registered ? std::chrono::milliseconds(r.max_age * 1000 + 2000)
                            : std::chrono::milliseconds(1000);
    if (max_silence.count() > 0)
      fresh = std::min(fresh, max_silence);
    refresh_at = clock::now() + fresh;
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

}  // namespace coapfleet::client
