// Fuzzes the fleet simulator's CoAP codec (sim/coap_codec.hpp) with whole
// datagrams, as its sockets receive them. A datagram that decodes is
// re-encoded with the codec's writer from the decoded view alone and must
// come out byte for byte the same (CoAP's encoding of a message is unique),
// and decode to the same view again; the view's accessors never read
// outside the datagram (ASan watches: the input is an exact-size copy).
//
//   build-fuzz/fuzz/fuzz_sim_codec fuzz/corpus/sim_codec      (or deploy/fuzz.sh)
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_input.hpp"
#include "sim/coap_codec.hpp"

using namespace coapfleet::sim::coap;

namespace {

void accessors(const message& m) {
  (void)m.uri_path();
  (void)m.path_is("updates/available");
  (void)m.path_is("");
  (void)m.uint_option(option::content_format);
  char code[5];
  code_text(m.code, code);
  FUZZ_CHECK(code_text(m.code) == code);
  for (uint16_t number : {option::block1, option::block2}) {
    if (auto* o = m.find(number)) {
      block b;
      if (decode_block(*o, b)) {
        FUZZ_CHECK(b.szx < 7 && b.num < (1u << 20));
        FUZZ_CHECK(encode_block(b) == decode_uint(o->value, o->length));
      }
    }
  }
}

void same(const message& a, const message& b) {
  FUZZ_CHECK(a.type == b.type && a.code == b.code && a.mid == b.mid);
  FUZZ_CHECK(a.token_view() == b.token_view());
  FUZZ_CHECK(a.option_count == b.option_count);
  for (size_t i = 0; i < a.option_count; ++i) {
    FUZZ_CHECK(a.options[i].number == b.options[i].number);
    FUZZ_CHECK(a.options[i].text() == b.options[i].text());
  }
  FUZZ_CHECK(a.payload_text() == b.payload_text());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  message m;
  auto err = decode(data, size, m);
  FUZZ_CHECK(to_string(err) != nullptr);
  if (err != decode_error::ok)
    return 0;
  FUZZ_CHECK(m.token_length <= 8 && m.option_count <= max_options);
  FUZZ_CHECK(m.payload_length == 0 || m.payload + m.payload_length == data + size);
  accessors(m);

  std::vector<uint8_t> out(size);  // the same size: the encoding is unique
  writer w(out.data(), out.size());
  w.header(m.type, m.code, m.mid, m.token, m.token_length);
  for (size_t i = 0; i < m.option_count; ++i)
    w.option(m.options[i].number, m.options[i].value, m.options[i].length);
  w.payload(m.payload, m.payload_length);
  FUZZ_CHECK(w.ok());
  FUZZ_CHECK(w.size() == size && std::memcmp(out.data(), data, size) == 0);

  message again;
  FUZZ_CHECK(decode(out.data(), out.size(), again) == decode_error::ok);
  same(m, again);
  return 0;
}
