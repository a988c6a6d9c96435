// A minimal CoAP (RFC 7252) message codec for the fleet simulator.
//
// The simulator speaks CoAP over plain UDP sockets of its own (no libcoap), so
// it needs exactly this: encode CON/NON/ACK/RST messages with a token and
// options in ascending order, and decode any datagram into a zero-copy view
// (header, token, options, payload) without ever reading past its end.
// Block2 (RFC 7959) values are decoded for completeness. Everything here is
// pure: no I/O, no allocation on the decode path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace coapfleet::sim::coap {

enum class msg_type : uint8_t { con = 0, non = 1, ack = 2, rst = 3 };

/// Codes as the single byte of the header: class << 5 | detail.
constexpr uint8_t make_code(unsigned cls, unsigned detail) {
  return static_cast<uint8_t>((cls & 7u) << 5 | (detail & 31u));
}

namespace code {
constexpr uint8_t empty = 0;
constexpr uint8_t get = 1, post = 2, put = 3, del = 4;
constexpr uint8_t created = make_code(2, 1), deleted = make_code(2, 2), valid = make_code(2, 3),
                  changed = make_code(2, 4), content = make_code(2, 5);
constexpr uint8_t bad_request = make_code(4, 0), forbidden = make_code(4, 3),
                  not_found = make_code(4, 4), method_not_allowed = make_code(4, 5),
                  request_too_large = make_code(4, 13), unsupported_format = make_code(4, 15),
                  too_many_requests = make_code(4, 29);
constexpr uint8_t internal_error = make_code(5, 0), service_unavailable = make_code(5, 3);
}  // namespace code

namespace option {
constexpr uint16_t if_match = 1, uri_host = 3, etag = 4, observe = 6, uri_port = 7,
                   uri_path = 11, content_format = 12, max_age = 14, uri_query = 15,
                   accept = 17, block2 = 23, block1 = 27, size2 = 28, size1 = 60;
}  // namespace option

namespace format {
constexpr uint16_t text = 0, link = 40, octets = 42, json = 50;
}  // namespace format

/// "2.04", "4.04", "0.00" for a code byte.
std::string code_text(uint8_t c);
/// The same into a caller's buffer of at least 5 bytes (no allocation).
void code_text(uint8_t c, char out[5]);
inline bool is_request(uint8_t c) { return c >= 1 && c <= 31; }
inline bool is_response(uint8_t c) { return c >= 64; }

// -- decoding ------------------------------------------------------------------------

constexpr size_t max_options = 32;

struct option_view {
  uint16_t number = 0;
  /// Up to 65535 + 269 bytes (the 2-byte extended length): wider than 16 bits.
  uint32_t length = 0;
  const uint8_t* value = nullptr;
  std::string_view text() const {
    return {reinterpret_cast<const char*>(value), length};
  }
};

enum class decode_error : uint8_t {
  ok,
  too_short,               ///< fewer than 4 bytes
  bad_version,             ///< version is not 1
  bad_token_length,        ///< TKL 9..15 (reserved)
  truncated,               ///< token, option header or value runs past the end
  reserved_nibble,         ///< option delta or length nibble 15 outside the payload marker
  empty_payload_after_marker,  ///< 0xFF followed by nothing
  empty_message_not_empty, ///< code 0.00 with a token, options or payload
  bad_option_number,       ///< option number above 65535
  too_many_options,        ///< more than max_options options
};
const char* to_string(decode_error e);

/// A decoded datagram. Option values, token and payload point into the
/// datagram, which must outlive the view.
struct message {
  msg_type type = msg_type::con;
  uint8_t code = 0;
  uint16_t mid = 0;
  uint8_t token_length = 0;
  uint8_t token[8] = {};
  uint8_t option_count = 0;
  option_view options[max_options];
  const uint8_t* payload = nullptr;
  size_t payload_length = 0;

  /// The first option with this number, or nullptr.
  const option_view* find(uint16_t number) const;
  /// The value of an unsigned-integer option (RFC 7252 §3.2 uint: big
  /// endian, leading zeros allowed); `fallback` when absent or longer than 4.
  uint32_t uint_option(uint16_t number, uint32_t fallback = 0) const;
  bool has(uint16_t number) const { return find(number) != nullptr; }
  /// The Uri-Path options joined with '/', e.g. "updates/available".
  std::string uri_path() const;
  /// True when every Uri-Path segment matches `path` ("a/b") exactly.
  bool path_is(std::string_view path) const;
  std::string_view payload_text() const {
    return {reinterpret_cast<const char*>(payload), payload_length};
  }
  std::string_view token_view() const {
    return {reinterpret_cast<const char*>(token), token_length};
  }
};

/// Decodes `len` bytes. On an error `out` is partly filled (the header when
/// at least 4 bytes were there, so a CON can still be answered with RST).
decode_error decode(const uint8_t* data, size_t len, message& out);

uint32_t decode_uint(const uint8_t* value, size_t len);

// -- Block2 / Block1 (RFC 7959 §2.2) -----------------------------------------------------

struct block {
  uint32_t num = 0;
  bool more = false;
  uint8_t szx = 6;  ///< size = 2^(szx+4); 7 is reserved
  uint32_t size() const { return 1u << (szx + 4); }
  uint32_t offset() const { return num * size(); }
};
/// False for SZX 7 or a value wider than 3 bytes (NUM is at most 20 bits).
bool decode_block(uint32_t value, block& out);
bool decode_block(const option_view& o, block& out);
uint32_t encode_block(const block& b);

// -- encoding ------------------------------------------------------------------------

/// Writes one message into a caller's buffer, in the order the wire needs:
/// header, then options in ascending number order, then the payload. Every
/// call returns false (and the writer stays failed) when the buffer is too
/// small or an option comes out of order.
class writer {
public:
  writer(uint8_t* buf, size_t capacity) : buf_(buf), cap_(capacity) {}

  bool header(msg_type t, uint8_t c, uint16_t mid, const uint8_t* token = nullptr,
              size_t token_length = 0);
  bool option(uint16_t number, const void* value, size_t length);
  bool option(uint16_t number, std::string_view value) {
    return option(number, value.data(), value.size());
  }
  /// Shortest big-endian encoding (0 is the empty value).
  bool uint_option(uint16_t number, uint32_t value);
  /// One Uri-Path option per non-empty '/'-separated segment.
  bool uri_path(std::string_view path);
  /// Payload marker and bytes; nothing for an empty payload.
  bool payload(const void* data, size_t length);
  bool payload(std::string_view p) { return payload(p.data(), p.size()); }

  bool ok() const { return ok_; }
  size_t size() const { return len_; }
  const uint8_t* data() const { return buf_; }

private:
  bool put(const void* p, size_t n);
  uint8_t* buf_;
  size_t cap_;
  size_t len_ = 0;
  uint16_t last_ = 0;
  bool ok_ = true;
  bool has_header_ = false;
  bool has_payload_ = false;
};

/// Empty message (ACK, RST, or CON "ping"): 4 bytes, no token.
size_t encode_empty(msg_type t, uint16_t mid, uint8_t out[4]);

/// Convenience for tests and cold paths.
struct request_spec {
  msg_type type = msg_type::con;
  uint8_t method = code::get;
  uint16_t mid = 0;
  std::string_view token;
  std::string_view path;
  int uri_port = -1;       ///< Uri-Port option when >= 0
  int content_format = -1; ///< Content-Format option when >= 0
  std::string_view payload;
};
std::string encode_request(const request_spec& r);
/// A piggybacked or separate response with the given token.
std::string encode_response(msg_type t, uint8_t c, uint16_t mid, std::string_view token,
                            int content_format = -1, std::string_view payload = {});

}  // namespace coapfleet::sim::coap
