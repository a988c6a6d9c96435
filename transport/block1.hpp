// Block-wise request bodies (RFC 7959 Block1), reassembled by the transport
// itself: libcoap 4.3.1's own reassembly (COAP_BLOCK_SINGLE_BODY) passes a
// lone block to the handler as the whole body when the client sends no
// Size1, and then dereferences a null body when that request is handled a
// second time (a deferred answer, a repeated last block): a segfault any
// client could cause. The contexts with listening endpoints therefore run
// without COAP_BLOCK_SINGLE_BODY, so that handlers see each block, and this
// assembler decides what a block means.
//
// Rules: blocks arrive in order from block 0, each (but the last) exactly as
// long as its SZX says; the size may shrink between blocks as long as the
// offset is exactly what arrived so far. A gap, a block out of order or a
// block for no upload in progress is 4.08 (Request Entity Incomplete) and the
// upload is dropped; the last block repeated (a client retrying with a new
// message id) is taken again without harm. A Size1 never reserves memory:
// it is only checked against the limit (4.13 with the limit in Size1). Uploads
// in progress are capped per source address and in all, by count and bytes,
// and expire when they stall. Pure logic: no I/O, no libcoap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace coapfleet::transport {

/// A Block1 or Block2 option's value (RFC 7959 §2.2).
struct block_value {
  uint32_t num = 0;
  bool more = false;
  uint8_t szx = 0;
  size_t size() const { return size_t{16} << szx; }
  uint64_t offset() const { return uint64_t{num} << (szx + 4); }
  /// The option value as sent (0–3 bytes, shortest form).
  uint32_t encode() const { return num << 4 | (more ? 8u : 0u) | szx; }
};

/// Decodes an option value of at most 3 bytes; false for a longer one.
bool decode_block_value(const uint8_t* value, size_t length, block_value& out);

struct upload_limits {
  size_t per_source = 8;                  ///< uploads in progress per source address
  size_t total = 256;                     ///< uploads in progress in all
  size_t total_bytes = 256u << 20;        ///< bytes held by uploads in progress
  int64_t idle_ms = 93'000;               ///< a stalled upload expires (MAX_TRANSMIT_WAIT)
};

class block1_assembler {
public:
  enum class outcome {
    complete,  ///< `body` is the whole request body: handle the request
    more,      ///< stored: answer 2.31 Continue
    refused    ///< answer `code` with `error` (and Size1 = `size1` on 4.13)
  };
  struct result {
    outcome what = outcome::refused;
    uint16_t code = 0;
    std::string error;
    uint64_t size1 = 0;
    uint32_t max_age = 0;  ///< on 5.03/4.29: when to try again
    std::string body;
  };
  /// Where a block belongs: the upload is keyed by the client's endpoint and
  /// what it uploads to (method, path, query, Request-Tag).
  struct block {
    std::string source;    ///< the client's address (per-source cap)
    std::string endpoint;  ///< address and port
    std::string target;    ///< method, path, query, Request-Tag
    block_value value;
    std::optional<uint64_t> size1;
    std::string_view data;
    int format = -1;       ///< Content-Format; -1: none (text/plain)
  };

  explicit block1_assembler(upload_limits limits = {}) : limits_(limits) {}

  /// Takes one block of a request whose body may be at most `max_body`.
  result take(const block& b, size_t max_body, int64_t now_ms);
  /// Drops uploads idle for longer than the limit allows.
  void expire(int64_t now_ms);
  /// The Content-Format block 0 of the upload in progress came with (-1:
  /// none); nothing when there is no such upload.
  std::optional<int> format_of(const std::string& endpoint, const std::string& target) const;
  /// Drops the upload in progress, if any.
  void forget(const std::string& endpoint, const std::string& target);

  size_t in_progress() const { return uploads_.size(); }
  size_t bytes() const { return bytes_; }
  const upload_limits& limits() const { return limits_; }
  void set_limits(upload_limits l) { limits_ = l; }

private:
  struct upload {
    std::string source;
    std::string body;
    size_t last_block = 0;  ///< bytes of the last block taken (a repeat is recognised)
    int format = -1;
    int64_t last_used = 0;
  };
  using map = std::map<std::string, upload>;
  void drop(map::iterator i);
  result refuse(uint16_t code, std::string error, const std::string* key);

  upload_limits limits_;
  map uploads_;
  std::unordered_map<std::string, size_t> per_source_;
  size_t bytes_ = 0;
  int64_t last_sweep_ = 0;
};

}  // namespace coapfleet::transport
