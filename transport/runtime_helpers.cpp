// libcoap helpers of both transports: time, addresses, method handlers,
// the peer of a session, and writing a coap_reply into a response PDU.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "common/listen_port.hpp"
#include "transport/runtime_internal.hpp"

namespace coapfleet::transport {

unsigned szx_at_most(unsigned bytes) {
  if (bytes == 0)
    return 6;
  unsigned szx = 0;
  while (szx < 6 && (16u << (szx + 1)) <= bytes)
    ++szx;
  return szx;
}

int64_t steady_millis() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

bool make_address(const std::string& ip, uint16_t port, coap_address_t& out) {
  coap_address_init(&out);
  if (inet_pton(AF_INET, ip.c_str(), &out.addr.sin.sin_addr) == 1) {
    out.addr.sin.sin_family = AF_INET;
    out.addr.sin.sin_port = htons(port);
    out.size = sizeof(out.addr.sin);
    return true;
  }
  if (inet_pton(AF_INET6, ip.c_str(), &out.addr.sin6.sin6_addr) == 1) {
    out.addr.sin6.sin6_family = AF_INET6;
    out.addr.sin6.sin6_port = htons(port);
    out.size = sizeof(out.addr.sin6);
    return true;
  }
  return false;
}

bool listening_address(const std::string& ip, uint16_t port, coap_address_t& out,
                       std::string& error) {
  if (!make_address(ip, port, out)) {
    error = ip + " is not an IPv4 or IPv6 address";
    return false;
  }
  error = common::listening_port_refusal(&out.addr.sa, out.size, ip + ":" + std::to_string(port));
  return error.empty();
}

void register_methods(coap_resource_t* r, coap_method_handler_t fallback,
                      coap_method_handler_t get, coap_method_handler_t post,
                      coap_method_handler_t put, coap_method_handler_t del) {
  static const coap_request_t all[] = {COAP_REQUEST_GET,   COAP_REQUEST_POST,
                                       COAP_REQUEST_PUT,   COAP_REQUEST_DELETE,
                                       COAP_REQUEST_FETCH, COAP_REQUEST_PATCH,
                                       COAP_REQUEST_IPATCH};
  for (auto m : all) {
    coap_method_handler_t h = fallback;
    if (m == COAP_REQUEST_GET && get)
      h = get;
    else if (m == COAP_REQUEST_POST && post)
      h = post;
    else if (m == COAP_REQUEST_PUT && put)
      h = put;
    else if (m == COAP_REQUEST_DELETE && del)
      h = del;
    coap_register_request_handler(r, m, h);
  }
}

std::string endpoint_uri(const std::string& bind, uint16_t port) {
  return "coap://" + (bind.find(':') != std::string::npos ? "[" + bind + "]" : bind) + ":"
         + std::to_string(port) + " (udp)";
}

runtime* runtime_of(coap_session_t* session) {
  return static_cast<runtime*>(coap_get_app_data(coap_session_get_context(session)));
}

peer runtime::who(const coap_session_t* session) {
  auto p = peer_of(session);
  identify(session, p);
  return p;
}

bool runtime::identify_request(const coap_session_t* session, const coap_pdu_t*, peer& out,
                               coap_reply&) {
  out = who(session);
  return true;
}

std::pair<std::string, uint16_t> address_port(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = {0};
  uint16_t port = 0;
  if (sa->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    port = ntohs(in->sin_port);
  } else if (sa->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    port = ntohs(in6->sin6_port);
    // An IPv4 client on a dual-stack socket: its IPv4 form.
    if (std::strncmp(buf, "::ffff:", 7) == 0 && std::strchr(buf + 7, '.'))
      std::memmove(buf, buf + 7, std::strlen(buf + 7) + 1);
  }
  return {buf, port};
}

peer peer_of(const coap_session_t* session) {
  peer p;
  auto [address, port] = address_port(&coap_session_get_addr_remote(session)->addr.sa);
  p.address = std::move(address);
  p.port = port;
  return p;  // anonymous: the runtime's identify() says more
}

void respond(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
             const coap_string_t* query, coap_pdu_t* response, const coap_reply& reply) {
  coap_pdu_set_code(response, static_cast<coap_pdu_code_t>(COAP_RESPONSE_CODE(reply.code)));
  if (reply.block2_num >= 0) {
    // One block of a body served a block at a time: options in ascending order.
    uint8_t buf[8];
    if (reply.etag != 0)
      coap_add_option(response, COAP_OPTION_ETAG,
                      coap_encode_var_safe8(buf, sizeof buf, reply.etag), buf);
    coap_add_option(response, COAP_OPTION_CONTENT_FORMAT,
                    coap_encode_var_safe(buf, sizeof buf, reply.content_format), buf);
    uint32_t b2 = static_cast<uint32_t>(reply.block2_num) << 4 | (reply.block2_more ? 8u : 0u)
                  | (reply.block2_szx & 7u);
    coap_add_option(response, COAP_OPTION_BLOCK2, coap_encode_var_safe(buf, sizeof buf, b2), buf);
    if (!reply.payload.empty())
      coap_add_data(response, reply.payload.size(),
                    reinterpret_cast<const uint8_t*>(reply.payload.data()));
    return;
  }
  if (runtime_of(session)->answer_observed(resource, session, request, query, response, reply))
    return;
  int max_age = reply.max_age == UINT32_MAX ? -1 : static_cast<int>(reply.max_age);
  if (reply.content_format == 0) {
    // libcoap leaves out Content-Format 0 (text/plain) as the default;
    // the contract says text answers carry it.
    uint8_t buf[4];
    coap_add_option(response, COAP_OPTION_CONTENT_FORMAT, coap_encode_var_safe(buf, sizeof buf, 0),
                    buf);
  }
  if (reply.etag != 0) {
    // libcoap answers a first request for block N > 0 (a resumed download)
    // with that block alone and without the ETag; the ETag is what tells a
    // resuming client that the blocks belong to one version.
    coap_block_t block;
    if (coap_get_block(request, COAP_OPTION_BLOCK2, &block) && block.num > 0) {
      uint8_t buf[8];
      coap_add_option(response, COAP_OPTION_ETAG, coap_encode_var_safe8(buf, sizeof buf, reply.etag),
                      buf);
    }
  }
  if (reply.code / 100 == 2) {
    // The answer to the last block of a block-wise body carries Block1 as
    // the block was sent (RFC 7959 §2.3): a client that finds none takes it
    // that its blocks were ignored.
    coap_opt_iterator_t it;
    if (coap_opt_t* b1 = coap_check_option(request, COAP_OPTION_BLOCK1, &it))
      if (!coap_check_option(response, COAP_OPTION_BLOCK1, &it))
        coap_add_option(response, COAP_OPTION_BLOCK1, coap_opt_length(b1), coap_opt_value(b1));
  }
  if (reply.code / 100 == 2) {
    coap_block_t asked;
    unsigned most = runtime_of(session)->answer_block_size(session);
    size_t size = reply.shared_body ? reply.shared_body->size() : reply.payload.size();
    if (most != 0 && size > most && !coap_get_block(request, COAP_OPTION_BLOCK2, &asked)) {
      unsigned szx = szx_at_most(most);
      uint8_t buf[4];
      coap_add_option(response, COAP_OPTION_BLOCK2, coap_encode_var_safe(buf, sizeof buf, szx), buf);
    }
  }
  if (reply.code / 100 != 2 && !reply.shared_body) {
    // An error goes whole, whatever block the request asked for (libcoap
    // would cut it to that block: a 4.00 of its own past the error's end).
    uint8_t buf[4];
    if (reply.content_format != 0)
      coap_add_option(response, COAP_OPTION_CONTENT_FORMAT,
                      coap_encode_var_safe(buf, sizeof buf, reply.content_format), buf);
    if (max_age >= 0)
      coap_add_option(response, COAP_OPTION_MAXAGE,
                      coap_encode_var_safe(buf, sizeof buf, static_cast<unsigned>(max_age)), buf);
    if (!reply.payload.empty())
      coap_add_data(response, reply.payload.size(),
                    reinterpret_cast<const uint8_t*>(reply.payload.data()));
    return;
  }
  if (reply.shared_body) {
    auto* keep = new std::shared_ptr<const shared_bytes>(reply.shared_body);
    coap_add_data_large_response(resource, session, request, response, query,
                                 reply.content_format, max_age, reply.etag, (*keep)->size(),
                                 (*keep)->data(), release_shared, keep);
    return;
  }
  auto* body = new std::string(reply.payload);
  coap_add_data_large_response(resource, session, request, response, query,
                               reply.content_format, max_age, reply.etag, body->size(),
                               reinterpret_cast<const uint8_t*>(body->data()), release_string,
                               body);
}

}  // namespace coapfleet::transport
