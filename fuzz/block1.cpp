// Fuzzes the transport's reassembly of block-wise request bodies
// (transport/block1.hpp; pure logic, compiled in directly) with sequences of
// blocks from a few clients to a few targets, under small limits read from
// the input so that every cap is reached.
//
// Invariants after every block: uploads in progress <= limits().total;
// bytes() within the byte cap (see held_bytes_bound); no bytes held with no
// upload in progress; a complete body is at most max_body, is exactly as
// long as the last block's offset plus its data, and ends with that data; a
// refusal has one of the codes the transport answers (4.13 with Size1 =
// max_body). After everything expires nothing is held.
//
//   build-fuzz/fuzz/fuzz_block1 fuzz/corpus/block1      (or deploy/fuzz.sh)
#include <array>
#include <string>

#include "fuzz_input.hpp"
#include "transport/block1.hpp"

using coapfleet::transport::block1_assembler;
using coapfleet::transport::block_value;
using coapfleet::transport::upload_limits;

namespace {

/// Block data is cut from here (the input only says where and how long),
/// so that a short input still sends full 1024-byte blocks.
const std::array<char, 4096>& pattern() {
  static const auto p = [] {
    std::array<char, 4096> a{};
    for (size_t i = 0; i < a.size(); ++i)
      a[i] = static_cast<char>('a' + (i * 7 + i / 13) % 26);
    return a;
  }();
  return p;
}

/// How far bytes() may exceed limits().total_bytes: not at all (the growth
/// of a body is decided and counted before it happens;
/// fuzz/regressions/block1/capacity_overshoot once held 8192 under a cap of 5200).
size_t held_bytes_bound(const upload_limits& limits, size_t) {
  return limits.total_bytes;
}

bool ends_with(const std::string& s, std::string_view tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  coapfleet::fuzz::input in(data, size);
  upload_limits limits;
  limits.per_source = 1 + in.byte() % 4;
  limits.total = 1 + in.byte() % 8;
  limits.total_bytes = in.u16() % 8192;
  limits.idle_ms = 1 + in.byte() * 100;
  const size_t max_body = in.u16() % 8192;
  block1_assembler a(limits);
  int64_t now = 0;

  while (!in.empty()) {
    auto op = in.byte();
    now += in.byte() * 10;
    if (op == 0xFF) {  // the transport's periodic sweep
      a.expire(now);
      continue;
    }
    std::string source = "192.0.2." + std::to_string(op & 3);
    block1_assembler::block b;
    b.source = source;
    b.endpoint = source + ":" + std::to_string(5683 + (op >> 2 & 1));
    b.target = (op & 8) ? "POST updates" : "PUT artifacts/a";
    auto v = in.byte();
    b.value.more = (v & 8) != 0;
    b.value.szx = static_cast<uint8_t>(v & 7);
    b.value.num = (op & 16) ? (v >> 4) : (in.u32() & 0xFFFFF);
    if (op & 32)
      b.size1 = (op & 64) ? in.u16() : in.u32();
    size_t length = (op & 128) ? b.value.size() : in.u16() % 2049;
    size_t from = in.byte() * 8 % (pattern().size() - 2048);
    b.data = std::string_view(pattern().data() + from, length);

    auto r = a.take(b, max_body, now);
    switch (r.what) {
      case block1_assembler::outcome::complete:
        FUZZ_CHECK(r.body.size() <= max_body);
        FUZZ_CHECK(r.body.size() == b.value.offset() + b.data.size());
        FUZZ_CHECK(ends_with(r.body, b.data));
        break;
      case block1_assembler::outcome::more:
        FUZZ_CHECK(b.value.more);
        FUZZ_CHECK(r.code == 0 && r.body.empty());
        break;
      case block1_assembler::outcome::refused:
        FUZZ_CHECK(r.code == 400 || r.code == 408 || r.code == 413 || r.code == 429
                   || r.code == 503);
        FUZZ_CHECK(!r.error.empty());
        if (r.code == 413)
          FUZZ_CHECK(r.size1 == max_body);
        break;
    }
    FUZZ_CHECK(a.in_progress() <= limits.total);
    if (a.bytes() > held_bytes_bound(limits, max_body))
      std::fprintf(stderr, "bytes() %zu, total_bytes %zu, uploads %zu\n", a.bytes(),
                   limits.total_bytes, a.in_progress());
    FUZZ_CHECK(a.bytes() <= held_bytes_bound(limits, max_body));
    FUZZ_CHECK(a.in_progress() > 0 || a.bytes() == 0);
  }
  a.expire(now + limits.idle_ms + 1);
  FUZZ_CHECK(a.in_progress() == 0 && a.bytes() == 0);
  return 0;
}
