#include "sim/coap_codec.hpp"

#include <cstring>

namespace coapfleet::sim::coap {

void code_text(uint8_t c, char out[5]) {
  unsigned detail = c & 31u;
  out[0] = static_cast<char>('0' + (c >> 5));
  out[1] = '.';
  out[2] = static_cast<char>('0' + detail / 10);
  out[3] = static_cast<char>('0' + detail % 10);
  out[4] = '\0';
}

std::string code_text(uint8_t c) {
  char buf[5];
  code_text(c, buf);
  return buf;
}

const char* to_string(decode_error e) {
  switch (e) {
    case decode_error::ok: return "ok";
    case decode_error::too_short: return "shorter than the 4-byte header";
    case decode_error::bad_version: return "version is not 1";
    case decode_error::bad_token_length: return "token length 9..15 is reserved";
    case decode_error::truncated: return "token or option runs past the end";
    case decode_error::reserved_nibble: return "option nibble 15 is reserved";
    case decode_error::empty_payload_after_marker: return "payload marker without payload";
    case decode_error::empty_message_not_empty: return "empty message (0.00) with content";
    case decode_error::bad_option_number: return "option number above 65535";
    case decode_error::too_many_options: return "too many options";
  }
  return "?";
}

// -- message -----------------------------------------------------------------------

const option_view* message::find(uint16_t number) const {
  for (size_t i = 0; i < option_count; ++i)
    if (options[i].number == number)
      return &options[i];
  return nullptr;
}

uint32_t decode_uint(const uint8_t* value, size_t len) {
  uint32_t v = 0;
  for (size_t i = 0; i < len; ++i)
    v = v << 8 | value[i];
  return v;
}

uint32_t message::uint_option(uint16_t number, uint32_t fallback) const {
  auto* o = find(number);
  if (!o || o->length > 4)
    return fallback;
  return decode_uint(o->value, o->length);
}

std::string message::uri_path() const {
  std::string p;
  bool first = true;
  for (size_t i = 0; i < option_count; ++i) {
    if (options[i].number != option::uri_path)
      continue;
    if (!first)
      p += '/';
    p.append(options[i].text());
    first = false;
  }
  return p;
}

bool message::path_is(std::string_view path) const {
  size_t pos = 0;
  for (size_t i = 0; i < option_count; ++i) {
    if (options[i].number != option::uri_path)
      continue;
    if (pos > path.size())
      return false;
    auto end = path.find('/', pos);
    if (end == std::string_view::npos)
      end = path.size();
    if (path.substr(pos, end - pos) != options[i].text())
      return false;
    pos = end + 1;
  }
  return pos == path.size() + 1 || (pos == 0 && path.empty());
}

namespace {

/// Reads an extended delta/length per its nibble. False when truncated.
bool extended(uint32_t nibble, const uint8_t* data, size_t len, size_t& pos, uint32_t& out) {
  if (nibble < 13) {
    out = nibble;
    return true;
  }
  if (nibble == 13) {
    if (pos + 1 > len)
      return false;
    out = 13u + data[pos];
    pos += 1;
    return true;
  }
  // 14 (15 is rejected by the caller)
  if (pos + 2 > len)
    return false;
  out = 269u + (static_cast<uint32_t>(data[pos]) << 8 | data[pos + 1]);
  pos += 2;
  return true;
}

}  // namespace

decode_error decode(const uint8_t* data, size_t len, message& out) {
  out.option_count = 0;
  out.payload = nullptr;
  out.payload_length = 0;
  out.token_length = 0;
  if (len < 4)
    return decode_error::too_short;
  out.type = static_cast<msg_type>(data[0] >> 4 & 3);
  out.code = data[1];
  out.mid = static_cast<uint16_t>(data[2] << 8 | data[3]);
  if (data[0] >> 6 != 1)
    return decode_error::bad_version;
  unsigned tkl = data[0] & 15u;
  if (tkl > 8)
    return decode_error::bad_token_length;
  if (out.code == code::empty && (tkl != 0 || len != 4))
    return decode_error::empty_message_not_empty;
  if (4 + tkl > len)
    return decode_error::truncated;
  std::memcpy(out.token, data + 4, tkl);
  out.token_length = static_cast<uint8_t>(tkl);
  size_t pos = 4 + tkl;
  uint32_t number = 0;
  while (pos < len) {
    uint8_t b = data[pos++];
    if (b == 0xFF) {
      if (pos == len)
        return decode_error::empty_payload_after_marker;
      out.payload = data + pos;
      out.payload_length = len - pos;
      return decode_error::ok;
    }
    uint32_t dn = b >> 4, ln = b & 15u;
    if (dn == 15 || ln == 15)
      return decode_error::reserved_nibble;
    uint32_t delta = 0, length = 0;
    if (!extended(dn, data, len, pos, delta) || !extended(ln, data, len, pos, length))
      return decode_error::truncated;
    number += delta;
    if (number > 0xFFFF)
      return decode_error::bad_option_number;
    if (length > len - pos)
      return decode_error::truncated;
    if (out.option_count == max_options)
      return decode_error::too_many_options;
    auto& o = out.options[out.option_count++];
    o.number = static_cast<uint16_t>(number);
    o.length = length;
    o.value = data + pos;
    pos += length;
  }
  return decode_error::ok;
}

// -- blocks ------------------------------------------------------------------------

bool decode_block(uint32_t value, block& out) {
  if (value > 0xFFFFFFu)
    return false;
  out.num = value >> 4;
  out.more = (value >> 3 & 1u) != 0;
  out.szx = static_cast<uint8_t>(value & 7u);
  return out.szx != 7;
}

bool decode_block(const option_view& o, block& out) {
  if (o.length > 3)
    return false;
  return decode_block(decode_uint(o.value, o.length), out);
}

uint32_t encode_block(const block& b) {
  return b.num << 4 | (b.more ? 8u : 0u) | (b.szx & 7u);
}

// -- writer ------------------------------------------------------------------------

bool writer::put(const void* p, size_t n) {
  if (!ok_ || n > cap_ - len_)
    return ok_ = false;
  if (n)
    std::memcpy(buf_ + len_, p, n);
  len_ += n;
  return true;
}

bool writer::header(msg_type t, uint8_t c, uint16_t mid, const uint8_t* token,
                    size_t token_length) {
  if (has_header_ || token_length > 8 || (token_length && !token))
    return ok_ = false;
  has_header_ = true;
  uint8_t h[4] = {static_cast<uint8_t>(0x40u | static_cast<unsigned>(t) << 4 | token_length),
                  c, static_cast<uint8_t>(mid >> 8), static_cast<uint8_t>(mid & 0xFF)};
  return put(h, 4) && put(token, token_length);
}

bool writer::option(uint16_t number, const void* value, size_t length) {
  if (!ok_ || !has_header_ || has_payload_ || number < last_ || length > 0xFFFF + 269u - 1)
    return ok_ = false;
  uint32_t delta = number - last_;
  uint8_t head[5];
  size_t n = 1;
  auto nibble = [&](uint32_t v, int shift) {
    if (v < 13) {
      head[0] |= static_cast<uint8_t>(v << shift);
    } else if (v < 269) {
      head[0] |= static_cast<uint8_t>(13u << shift);
      head[n++] = static_cast<uint8_t>(v - 13);
    } else {
      head[0] |= static_cast<uint8_t>(14u << shift);
      head[n++] = static_cast<uint8_t>((v - 269) >> 8);
      head[n++] = static_cast<uint8_t>((v - 269) & 0xFF);
    }
  };
  head[0] = 0;
  nibble(delta, 4);  // the delta's extension bytes come before the length's
  nibble(static_cast<uint32_t>(length), 0);
  last_ = number;
  return put(head, n) && put(value, length);
}

bool writer::uint_option(uint16_t number, uint32_t value) {
  uint8_t b[4];
  size_t n = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    auto byte = static_cast<uint8_t>(value >> shift);
    if (n || byte)
      b[n++] = byte;
  }
  return option(number, b, n);
}

bool writer::uri_path(std::string_view path) {
  size_t pos = 0;
  while (pos <= path.size()) {
    auto end = path.find('/', pos);
    if (end == std::string_view::npos)
      end = path.size();
    if (end > pos && !option(option::uri_path, path.data() + pos, end - pos))
      return false;
    pos = end + 1;
  }
  return ok_;
}

bool writer::payload(const void* data, size_t length) {
  if (!ok_ || !has_header_ || has_payload_)
    return ok_ = false;
  if (length == 0)
    return true;
  has_payload_ = true;
  uint8_t marker = 0xFF;
  return put(&marker, 1) && put(data, length);
}

size_t encode_empty(msg_type t, uint16_t mid, uint8_t out[4]) {
  out[0] = static_cast<uint8_t>(0x40u | static_cast<unsigned>(t) << 4);
  out[1] = 0;
  out[2] = static_cast<uint8_t>(mid >> 8);
  out[3] = static_cast<uint8_t>(mid & 0xFF);
  return 4;
}

std::string encode_request(const request_spec& r) {
  std::string out(64 + r.path.size() + r.payload.size() + 16, '\0');
  writer w(reinterpret_cast<uint8_t*>(out.data()), out.size());
  w.header(r.type, r.method, r.mid, reinterpret_cast<const uint8_t*>(r.token.data()),
           r.token.size());
  if (r.uri_port >= 0)
    w.uint_option(option::uri_port, static_cast<uint32_t>(r.uri_port));
  w.uri_path(r.path);
  if (r.content_format >= 0)
    w.uint_option(option::content_format, static_cast<uint32_t>(r.content_format));
  w.payload(r.payload);
  out.resize(w.ok() ? w.size() : 0);
  return out;
}

std::string encode_response(msg_type t, uint8_t c, uint16_t mid, std::string_view token,
                            int content_format, std::string_view payload) {
  std::string out(32 + payload.size(), '\0');
  writer w(reinterpret_cast<uint8_t*>(out.data()), out.size());
  w.header(t, c, mid, reinterpret_cast<const uint8_t*>(token.data()), token.size());
  if (content_format >= 0)
    w.uint_option(option::content_format, static_cast<uint32_t>(content_format));
  w.payload(payload);
  out.resize(w.ok() ? w.size() : 0);
  return out;
}

}  // namespace coapfleet::sim::coap
