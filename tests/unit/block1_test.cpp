// Block-wise request bodies reassembled by the transport (transport/block1.hpp):
// blocks in order make the body whatever Size1 says or omits; gaps, blocks out
// of order and blocks of no upload are 4.08; a repeated last block is taken
// again; SZX 7 and wrongly sized blocks are 4.00; Size1 and the running size
// are held to the limit (4.13 with the limit); uploads are capped per source
// and in all, and stalled ones expire.
#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "transport/block1.hpp"

using namespace coapfleet::transport;
using outcome = block1_assembler::outcome;

namespace {

/// `data` must outlive the block (it is a view of it).
block1_assembler::block blk(uint32_t num, bool more, uint8_t szx, std::string_view data,
                            const std::string& port = "1000", const std::string& target = "PUT /artifacts/z",
                            const std::string& source = "127.0.0.1") {
  block1_assembler::block b;
  b.source = source;
  b.endpoint = source + ":" + port;
  b.target = target;
  b.value = block_value{num, more, szx};
  b.data = data;
  return b;
}

}  // namespace

TEST_CASE("block values decode and encode as RFC 7959 writes them") {
  block_value v;
  const uint8_t one[] = {0x1a};  // num 1, M, SZX 2
  REQUIRE(decode_block_value(one, 1, v));
  CHECK(v.num == 1);
  CHECK(v.more);
  CHECK(v.szx == 2);
  CHECK(v.size() == 64);
  CHECK(v.offset() == 64);
  CHECK(v.encode() == 0x1a);
  REQUIRE(decode_block_value(nullptr, 0, v));
  CHECK(v.num == 0);
  CHECK_FALSE(v.more);
  const uint8_t four[] = {1, 2, 3, 4};
  CHECK_FALSE(decode_block_value(four, 4, v));
}

TEST_CASE("blocks without Size1 make one body, not one body per block") {
  block1_assembler a;
  std::string b0(64, 'A'), b1(10, 'B');
  auto r0 = a.take(blk(0, true, 2, b0), 1 << 20, 0);
  CHECK(r0.what == outcome::more);
  CHECK(a.in_progress() == 1);
  auto r1 = a.take(blk(1, false, 2, b1), 1 << 20, 10);
  REQUIRE(r1.what == outcome::complete);
  CHECK(r1.body == b0 + b1);
  CHECK(a.in_progress() == 0);
  CHECK(a.bytes() == 0);
  // The last block again, after the upload completed: no upload any more.
  auto again = a.take(blk(1, false, 2, b1), 1 << 20, 20);
  CHECK(again.what == outcome::refused);
  CHECK(again.code == 408);
}

TEST_CASE("a single block (block 0 without More) is the whole body and holds nothing") {
  block1_assembler a;
  auto r = a.take(blk(0, false, 6, "{}"), 100, 0);
  REQUIRE(r.what == outcome::complete);
  CHECK(r.body == "{}");
  CHECK(a.in_progress() == 0);
}

TEST_CASE("gaps, blocks out of order and blocks of no upload are 4.08 and drop the upload") {
  block1_assembler a;
  std::string b(16, 'x');
  CHECK(a.take(blk(1, true, 0, b), 1000, 0).code == 408);  // no block 0
  CHECK(a.take(blk(0, true, 0, b), 1000, 0).what == outcome::more);
  auto gap = a.take(blk(2, false, 0, b), 1000, 0);
  CHECK(gap.what == outcome::refused);
  CHECK(gap.code == 408);
  CHECK(gap.error.find("gap") != std::string::npos);
  CHECK(a.in_progress() == 0);
  // Dropped: the block that would have been next no longer fits anything.
  CHECK(a.take(blk(1, false, 0, b), 1000, 0).code == 408);
}

TEST_CASE("the last block repeated (a retry with a new message id) is taken once") {
  block1_assembler a;
  std::string b0(32, 'a'), b1(32, 'b');
  CHECK(a.take(blk(0, true, 1, b0), 1000, 0).what == outcome::more);
  CHECK(a.take(blk(1, true, 1, b1), 1000, 0).what == outcome::more);
  CHECK(a.take(blk(1, true, 1, b1), 1000, 0).what == outcome::more);
  auto r = a.take(blk(2, false, 1, "end"), 1000, 0);
  REQUIRE(r.what == outcome::complete);
  CHECK(r.body == b0 + b1 + "end");
}

TEST_CASE("the block size may shrink when the offset is exact") {
  block1_assembler a;
  std::string big(1024, 'a'), small(512, 'b');
  CHECK(a.take(blk(0, true, 6, big), 1 << 20, 0).what == outcome::more);
  CHECK(a.take(blk(2, true, 5, small), 1 << 20, 0).what == outcome::more);  // 2 * 512 = 1024
  auto r = a.take(blk(3, false, 5, "z"), 1 << 20, 0);
  REQUIRE(r.what == outcome::complete);
  CHECK(r.body.size() == 1024 + 512 + 1);
}

TEST_CASE("SZX 7 and wrongly sized blocks are 4.00") {
  block1_assembler a;
  CHECK(a.take(blk(0, true, 7, std::string(1024, 'a')), 1 << 20, 0).code == 400);
  auto short_more = a.take(blk(0, true, 6, std::string(100, 'a')), 1 << 20, 0);
  CHECK(short_more.code == 400);
  CHECK(short_more.error.find("exactly 1024") != std::string::npos);
  CHECK(a.take(blk(0, false, 0, std::string(17, 'a')), 1 << 20, 0).code == 400);
  CHECK(a.in_progress() == 0);
}

TEST_CASE("Size1 reserves nothing and is held to the limit, like the running size") {
  block1_assembler a;
  const std::string a1024(1024, 'a');
  auto b = blk(0, true, 6, a1024);
  b.size1 = 60'000'000;
  auto r = a.take(b, 1 << 20, 0);
  CHECK(r.code == 413);
  CHECK(r.size1 == (1u << 20));
  CHECK(a.bytes() == 0);
  b.size1 = 100;  // lying low: taken, and the running size is what counts
  CHECK(a.take(b, 2048, 0).what == outcome::more);
  CHECK(a.bytes() < 2048);
  CHECK(a.take(blk(1, true, 6, std::string(1024, 'b')), 2048, 0).what == outcome::more);
  auto over = a.take(blk(2, false, 6, "x"), 2048, 0);
  CHECK(over.code == 413);
  CHECK(over.size1 == 2048);
  CHECK(a.in_progress() == 0);
}

TEST_CASE("a new upload to the same target restarts it; other endpoints are apart") {
  block1_assembler a;
  std::string x(16, 'x'), y(16, 'y');
  CHECK(a.take(blk(0, true, 0, x, "1"), 1000, 0).what == outcome::more);
  CHECK(a.take(blk(0, true, 0, y, "2"), 1000, 0).what == outcome::more);
  CHECK(a.take(blk(0, true, 0, y, "1"), 1000, 0).what == outcome::more);  // restart on port 1
  CHECK(a.in_progress() == 2);
  auto one = a.take(blk(1, false, 0, "1", "1"), 1000, 0);
  auto two = a.take(blk(1, false, 0, "2", "2"), 1000, 0);
  CHECK(one.body == y + "1");
  CHECK(two.body == y + "2");
}

TEST_CASE("uploads in progress are capped per source and in all; stalled ones expire") {
  upload_limits l;
  l.per_source = 2;
  l.total = 3;
  l.idle_ms = 1000;
  block1_assembler a(l);
  std::string b(16, 'b');
  CHECK(a.take(blk(0, true, 0, b, "1", "t1"), 1000, 0).what == outcome::more);
  CHECK(a.take(blk(0, true, 0, b, "2", "t2"), 1000, 0).what == outcome::more);
  auto third = a.take(blk(0, true, 0, b, "3", "t3"), 1000, 0);
  CHECK(third.code == 429);
  CHECK(third.max_age > 0);
  CHECK(a.take(blk(0, true, 0, b, "4", "t", "127.0.0.2"), 1000, 0).what == outcome::more);
  auto full = a.take(blk(0, true, 0, b, "5", "t", "127.0.0.3"), 1000, 0);
  CHECK(full.code == 503);
  CHECK(a.in_progress() == 3);
  a.expire(500);
  CHECK(a.in_progress() == 3);
  a.expire(1500);
  CHECK(a.in_progress() == 0);
  CHECK(a.bytes() == 0);
  CHECK(a.take(blk(0, true, 0, b, "3", "t3"), 1000, 1600).what == outcome::more);
}

TEST_CASE("thousands of unfinished uploads hold at most the byte cap") {
  upload_limits l;
  l.total = 100000;
  l.per_source = 100000;
  l.total_bytes = 64 * 1024;
  block1_assembler a(l);
  std::string b(1024, 'b');
  size_t refused = 0;
  for (int i = 0; i < 2000; ++i) {
    auto blk0 = blk(0, true, 6, b, std::to_string(i));
    blk0.size1 = 60'000'000;
    if (a.take(blk0, 100'000'000, 0).what == outcome::refused)
      ++refused;
  }
  CHECK(a.bytes() <= 64 * 1024);
  CHECK(refused >= 1900);
}

TEST_CASE("the bytes held never go beyond the cap, whatever the buffers' growth") {
  upload_limits l;
  l.total_bytes = 5000;
  block1_assembler a(l);
  std::string b(1024, 'b');
  for (int u = 0; u < 3; ++u)
    for (uint32_t n = 0; n < 8; ++n) {
      a.take(blk(n, true, 6, b, std::to_string(u)), 1 << 20, 0);
      CHECK(a.bytes() <= l.total_bytes);
    }
}

TEST_CASE("a later block with another Content-Format than block 0's is 4.08") {
  block1_assembler a;
  const std::string a16(16, 'a');
  auto b0 = blk(0, true, 0, a16);
  b0.format = 42;
  CHECK(a.take(b0, 1000, 0).what == outcome::more);
  CHECK(a.format_of(b0.endpoint, b0.target) == 42);
  auto b1 = blk(1, false, 0, "x");
  b1.format = 50;
  auto r = a.take(b1, 1000, 0);
  CHECK(r.code == 408);
  CHECK(r.error.find("Content-Format") != std::string::npos);
  CHECK_FALSE(a.format_of(b0.endpoint, b0.target).has_value());
  CHECK(a.take(b0, 1000, 0).what == outcome::more);
  a.forget(b0.endpoint, b0.target);
  CHECK(a.in_progress() == 0);
}
