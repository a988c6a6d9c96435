// The runtime's own handling of request bodies that do not come in one
// ordinary datagram: Block1 sequences (transport/block1.hpp decides, this
// answers), and datagrams larger than libcoap reads.
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "common/log.hpp"
#include "model/json.hpp"
#include "actors/replies.hpp"
#include "transport/runtime_internal.hpp"

namespace coapfleet::transport {

namespace {

constexpr uint16_t request_tag_option = 292;  // RFC 9175

std::string option_text(const coap_pdu_t* pdu, uint16_t number) {
  coap_opt_iterator_t it;
  std::string out;
  coap_option_iterator_init(pdu, &it, COAP_OPT_ALL);
  while (coap_opt_t* opt = coap_option_next(&it))
    if (it.number == number) {
      out.append(reinterpret_cast<const char*>(coap_opt_value(opt)), coap_opt_length(opt));
      out += '\x1f';
    }
  return out;
}

/// What an upload is to: method, path, query and Request-Tag (and the
/// content format, so that a change of it is a new upload).
std::string upload_target(const coap_pdu_t* req) {
  std::string t = std::to_string(coap_pdu_get_code(req)) + ' ';
  t += option_text(req, COAP_OPTION_URI_PATH) + '?' + option_text(req, COAP_OPTION_URI_QUERY);
  t += '#' + option_text(req, request_tag_option) + '#'
       + option_text(req, COAP_OPTION_CONTENT_FORMAT);
  return t;
}

void add_uint_option(coap_pdu_t* pdu, uint16_t number, uint64_t value) {
  uint8_t buf[8];
  coap_add_option(pdu, number, coap_encode_var_safe8(buf, sizeof buf, value), buf);
}

}  // namespace

size_t runtime::max_body(std::string_view) const { return 64 * 1024; }

bool runtime::take_block1(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                          const coap_string_t* q, coap_pdu_t* resp, size_t max_body) {
  coap_opt_iterator_t it;
  coap_opt_t* opt = coap_check_option(req, COAP_OPTION_BLOCK1, &it);
  if (opt == nullptr || coap_find_async(s, coap_pdu_get_token(req)) != nullptr)
    return true;
  block1_assembler::block b;
  if (!decode_block_value(coap_opt_value(opt), coap_opt_length(opt), b.value)) {
    respond(r, s, req, q, resp,
            json_reply(400, model::encode_error("Block1 option longer than 3 bytes",
                                                {{"field", "block1"}})));
    return false;
  }
  auto p = peer_of(s);
  b.source = p.address;
  b.endpoint = p.address + '|' + std::to_string(p.port);
  b.target = upload_target(req);
  if (coap_opt_t* size1 = coap_check_option(req, COAP_OPTION_SIZE1, &it))
    b.size1 = coap_decode_var_bytes8(coap_opt_value(size1), coap_opt_length(size1));
  size_t len = 0;
  const uint8_t* data = nullptr;
  if (coap_get_data(req, &len, &data))
    b.data = std::string_view(reinterpret_cast<const char*>(data), len);
  auto result = uploads_.take(b, max_body, steady_millis());
  switch (result.what) {
  case block1_assembler::outcome::complete:
    assembled_ = std::move(result.body);
    assembled_for_ = req;
    return true;
  case block1_assembler::outcome::more:
    coap_pdu_set_code(resp, static_cast<coap_pdu_code_t>(COAP_RESPONSE_CODE(231)));
    if (!coap_check_option(resp, COAP_OPTION_BLOCK1, &it))
      add_uint_option(resp, COAP_OPTION_BLOCK1, b.value.encode());
    return false;
  case block1_assembler::outcome::refused:
    break;
  }
  CF_DEBUG("transport", "Block1 ", b.value.num, b.value.more ? "/M" : "", " from ", b.endpoint,
           ": ", result.code, " ", result.error);
  auto reply = json_reply(result.code, model::encode_error(result.error, {{"field", "block1"}}));
  if (result.max_age)
    reply.max_age = result.max_age;
  if (result.code == 413) {
    add_uint_option(resp, COAP_OPTION_SIZE1, result.size1);
  }
  respond(r, s, req, q, resp, reply);
  return false;
}

std::string_view runtime::request_body(const coap_pdu_t* req) const {
  if (req == assembled_for_ && req != nullptr)
    return assembled_;
  size_t len = 0;
  const uint8_t* data = nullptr;
  if (!coap_get_data(req, &len, &data))
    return {};
  return std::string_view(reinterpret_cast<const char*>(data), len);
}

void runtime::release_body() {
  assembled_for_ = nullptr;
  std::string().swap(assembled_);
}

namespace {

/// The parts of a request datagram a 4.13 answer needs; false when it is
/// not a well-formed request.
struct request_head {
  uint8_t type = 0;
  uint16_t mid = 0;
  std::string token;
  std::string first_segment;
};

bool parse_head(const uint8_t* d, size_t n, request_head& out) {
  if (n < 4 || (d[0] >> 6) != 1)
    return false;
  size_t tkl = d[0] & 0x0f;
  uint8_t code = d[1];
  if (tkl > 8 || n < 4 + tkl || code < 1 || code > 31)
    return false;
  out.type = (d[0] >> 4) & 3;
  if (out.type > 1)
    return false;  // requests come as CON or NON
  out.mid = static_cast<uint16_t>(d[2] << 8 | d[3]);
  out.token.assign(reinterpret_cast<const char*>(d + 4), tkl);
  size_t pos = 4 + tkl;
  unsigned number = 0;
  auto ext = [&](unsigned nibble, unsigned& value) {
    if (nibble < 13) {
      value = nibble;
      return true;
    }
    if (nibble == 13 && pos < n) {
      value = d[pos++] + 13u;
      return true;
    }
    if (nibble == 14 && pos + 1 < n) {
      value = (d[pos] << 8 | d[pos + 1]) + 269u;
      pos += 2;
      return true;
    }
    return false;
  };
  while (pos < n && d[pos] != 0xff) {
    unsigned delta = 0, length = 0;
    uint8_t byte = d[pos++];
    if (!ext(byte >> 4, delta) || !ext(byte & 0x0f, length) || pos + length > n)
      return false;
    number += delta;
    if (number == COAP_OPTION_URI_PATH && out.first_segment.empty())
      out.first_segment.assign(reinterpret_cast<const char*>(d + pos), length);
    pos += length;
  }
  return true;
}

/// A 4.13 answer to `head`: ACK (CON) or NON, the token, Block1 0/0/6 (the
/// block size to send it in), Content-Format 50, Size1 (the body limit),
/// and a JSON body.
std::vector<uint8_t> too_large_answer(const request_head& head, uint16_t mid, size_t got,
                                      size_t limit) {
  std::vector<uint8_t> out;
  out.push_back(static_cast<uint8_t>(0x40 | (head.type == 0 ? 2 : 1) << 4 | head.token.size()));
  out.push_back(static_cast<uint8_t>(4 << 5 | 13));
  out.push_back(static_cast<uint8_t>(mid >> 8));
  out.push_back(static_cast<uint8_t>(mid));
  out.insert(out.end(), head.token.begin(), head.token.end());
  // Content-Format (12) = 50, Block1 (27) = 0x06, Size1 (60) = limit.
  out.push_back(0xc1);
  out.push_back(50);
  out.push_back(0xd1);
  out.push_back(27 - 12 - 13);
  out.push_back(0x06);
  uint8_t size[8];
  unsigned n = 0;
  for (uint64_t v = limit; v != 0; v >>= 8)
    size[n++] = static_cast<uint8_t>(v);
  out.push_back(static_cast<uint8_t>(0xd0 | n));
  out.push_back(60 - 27 - 13);
  for (unsigned i = n; i > 0; --i)
    out.push_back(size[i - 1]);
  auto body = model::encode_error(
    "request of " + std::to_string(got) + " bytes in one datagram: at most "
      + std::to_string(COAP_RXBUFFER_SIZE)
      + " bytes are read per datagram; send the body block-wise (Block1, blocks of 1024 bytes); "
        "the body may have at most "
      + std::to_string(limit) + " bytes",
    {{"field", "payload"}});
  out.push_back(0xff);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

}  // namespace

void runtime::screen_datagrams() {
  uint8_t head[512];
  for (int fd : plain_fds_) {
    for (int i = 0; i < 16; ++i) {
      ssize_t n = ::recv(fd, head, sizeof head, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
      if (n < 0)
        break;
      if (n <= static_cast<ssize_t>(COAP_RXBUFFER_SIZE)) {
        // An empty ACK or RST (4 bytes, code 0): maybe to a notification.
        if (n == 4 && (head[0] >> 6) == 1 && head[1] == 0 && ((head[0] >> 4) & 3) >= 2
            && !observations_.empty()) {
          sockaddr_storage from{};
          socklen_t from_len = sizeof from;
          if (::recvfrom(fd, head, 4, MSG_PEEK | MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from),
                         &from_len) == 4) {
            auto p = address_port(reinterpret_cast<const sockaddr*>(&from));
            on_empty_message(p.first + '|' + std::to_string(p.second),
                             static_cast<uint8_t>((head[0] >> 4) & 3),
                             static_cast<uint16_t>(head[2] << 8 | head[3]));
          }
        }
        break;
      }
      std::vector<uint8_t> buf(static_cast<size_t>(n));
      sockaddr_storage from{};
      socklen_t from_len = sizeof from;
      ssize_t got = ::recvfrom(fd, buf.data(), buf.size(), MSG_DONTWAIT,
                               reinterpret_cast<sockaddr*>(&from), &from_len);
      if (got <= 0)
        break;
      request_head rh;
      if (!parse_head(buf.data(), static_cast<size_t>(got), rh)) {
        CF_DEBUG("transport", "dropped a datagram of ", got, " bytes (not a request)");
        continue;
      }
      auto mid = rh.type == 0 ? rh.mid : static_cast<uint16_t>(next_id_ * 7919u);
      auto answer = too_large_answer(rh, mid, static_cast<size_t>(got), max_body(rh.first_segment));
      ::sendto(fd, answer.data(), answer.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from),
               from_len);
      CF_DEBUG("transport", "answered 4.13 to a request of ", got, " bytes in one datagram");
    }
  }
}

}  // namespace coapfleet::transport
