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

/// What an upload is to: method, path, query and Request-Tag (the same text
/// as target_of() makes from a datagram).
std::string upload_target(const coap_pdu_t* req) {
  std::string t = std::to_string(coap_pdu_get_code(req)) + ' ';
  t += option_text(req, COAP_OPTION_URI_PATH) + '?' + option_text(req, COAP_OPTION_URI_QUERY);
  t += '#' + option_text(req, request_tag_option) + '#';
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
  b.format = 0;  // none is text/plain, as libcoap counts it
  if (coap_opt_t* cf = coap_check_option(req, COAP_OPTION_CONTENT_FORMAT, &it))
    b.format = static_cast<int>(coap_decode_var_bytes(coap_opt_value(cf), coap_opt_length(cf)));
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
  uint8_t code = 0;
  uint16_t mid = 0;
  std::string token;
  std::string first_segment;
  std::string path, query, request_tag;  ///< as option_text() writes them
  int format = 0;                         ///< Content-Format (none: 0, text/plain)
  bool has_block1 = false;
  uint32_t block1_num = 0;
};

/// The upload a request's blocks belong to, as upload_target() makes it.
std::string target_of(const request_head& h) {
  return std::to_string(h.code) + ' ' + h.path + '?' + h.query + '#' + h.request_tag + '#';
}

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
  out.code = code;
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
    const char* value = reinterpret_cast<const char*>(d + pos);
    uint32_t uint = 0;
    for (unsigned i = 0; i < length && i < 4; ++i)
      uint = uint << 8 | d[pos + i];
    if (number == COAP_OPTION_URI_PATH && out.first_segment.empty() && out.path.empty())
      out.first_segment.assign(value, length);
    if (number == COAP_OPTION_URI_PATH)
      (out.path.append(value, length)) += '\x1f';
    else if (number == COAP_OPTION_URI_QUERY)
      (out.query.append(value, length)) += '\x1f';
    else if (number == request_tag_option)
      (out.request_tag.append(value, length)) += '\x1f';
    else if (number == COAP_OPTION_CONTENT_FORMAT)
      out.format = static_cast<int>(uint);
    else if (number == COAP_OPTION_BLOCK1 && length <= 3) {
      out.has_block1 = true;
      out.block1_num = uint >> 4;
    }
    pos += length;
  }
  return true;
}

/// An error answer to `head` from the screen: ACK (CON) or NON, the token,
/// Content-Format 50, `extra` options (ascending, all after 12) and a JSON
/// body.
std::vector<uint8_t> screen_answer(const request_head& head, uint16_t mid, unsigned code_class,
                                   unsigned code_detail,
                                   const std::vector<std::pair<uint16_t, uint64_t>>& extra,
                                   const std::string& body) {
  std::vector<uint8_t> out;
  out.push_back(static_cast<uint8_t>(0x40 | (head.type == 0 ? 2 : 1) << 4 | head.token.size()));
  out.push_back(static_cast<uint8_t>(code_class << 5 | code_detail));
  out.push_back(static_cast<uint8_t>(mid >> 8));
  out.push_back(static_cast<uint8_t>(mid));
  out.insert(out.end(), head.token.begin(), head.token.end());
  unsigned last = 0;
  auto option = [&](uint16_t number, uint64_t value) {
    uint8_t bytes[8];
    unsigned n = 0;
    for (uint64_t v = value; v != 0; v >>= 8)
      bytes[n++] = static_cast<uint8_t>(v);
    unsigned delta = number - last;  // < 269 for the options used here
    last = number;
    if (delta < 13) {
      out.push_back(static_cast<uint8_t>(delta << 4 | n));
    } else {
      out.push_back(static_cast<uint8_t>(0xd0 | n));
      out.push_back(static_cast<uint8_t>(delta - 13));
    }
    for (unsigned i = n; i > 0; --i)
      out.push_back(bytes[i - 1]);
  };
  option(COAP_OPTION_CONTENT_FORMAT, 50);
  for (auto& [number, value] : extra)
    option(number, value);
  out.push_back(0xff);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

/// A 4.13 answer to a request too large for one datagram: Block1 0/0/6 (the
/// block size to send it in) and Size1 (the body limit).
std::vector<uint8_t> too_large_answer(const request_head& head, uint16_t mid, size_t got,
                                      size_t limit) {
  auto body = model::encode_error(
    "request of " + std::to_string(got) + " bytes in one datagram: at most "
      + std::to_string(COAP_RXBUFFER_SIZE)
      + " bytes are read per datagram; send the body block-wise (Block1, blocks of 1024 bytes); "
        "the body may have at most "
      + std::to_string(limit) + " bytes",
    {{"field", "payload"}});
  return screen_answer(head, mid, 4, 13, {{COAP_OPTION_BLOCK1, 0x06}, {COAP_OPTION_SIZE1, limit}},
                       body);
}

}  // namespace

bool runtime::screen_block1(int fd, const uint8_t* d, size_t n) {
  // libcoap answers a later block whose Content-Format is not block 0's
  // itself, 4.08 with a text body, before any handler: this one gets JSON.
  request_head rh;
  if (!parse_head(d, n, rh) || !rh.has_block1 || rh.block1_num == 0)
    return false;
  sockaddr_storage from{};
  socklen_t from_len = sizeof from;
  uint8_t one;
  if (::recvfrom(fd, &one, 1, MSG_PEEK | MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from),
                 &from_len) < 0)
    return false;
  auto p = address_port(reinterpret_cast<const sockaddr*>(&from));
  auto endpoint = p.first + '|' + std::to_string(p.second);
  auto target = target_of(rh);
  auto format = uploads_.format_of(endpoint, target);
  if (!format || *format == rh.format)
    return false;
  ::recvfrom(fd, &one, 1, MSG_DONTWAIT, nullptr, nullptr);  // taken off the socket
  uploads_.forget(endpoint, target);
  auto body = model::encode_error("block " + std::to_string(rh.block1_num)
                                    + " has Content-Format " + std::to_string(rh.format)
                                    + ", block 0 had " + std::to_string(*format)
                                    + ": start again from block 0",
                                  {{"field", "content-format"}});
  auto mid = rh.type == 0 ? rh.mid : static_cast<uint16_t>(next_id_ * 7919u);
  auto answer = screen_answer(rh, mid, 4, 8, {}, body);
  ::sendto(fd, answer.data(), answer.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from),
           from_len);
  return true;
}

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
        if (uploads_.in_progress() > 0 && screen_block1(fd, head, std::min<size_t>(static_cast<size_t>(n), sizeof head)))
          continue;  // answered and taken off the socket: look at the next
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
