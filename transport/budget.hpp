// Per-source budgets for plain CoAP requests that carry no identity (RFC 8516
// 4.29 Too Many Requests): a token bucket per source address, kept in a
// bounded table so that a flood from many (spoofed) addresses costs bounded
// memory; sources beyond the table share one bucket.
#pragma once

#include <array>
#include <cstdint>
#include <unordered_map>

#include "common/token_bucket.hpp"

namespace coapfleet::transport {

struct budget_config {
  double rate = 20;        ///< requests per second per source; 0: no budget
  double burst = 40;       ///< requests a source may send at once
  size_t sources = 65536;  ///< buckets kept (beyond: one shared bucket)
};

class source_budgets {
public:
  using address = std::array<uint8_t, 16>;  ///< IPv4 in its IPv6-mapped form

  enum class verdict : uint8_t {
    pass,
    refuse,  ///< answer 4.29 with Max-Age
    drop,    ///< over budget and already told within the last second: no answer
  };

  explicit source_budgets(budget_config cfg = {}) : cfg_(cfg) {}

  const budget_config& config() const { return cfg_; }

  /// One request from `from` at `now_ms`; on refuse, `retry_after_s` is the
  /// Max-Age to send.
  verdict admit(const address& from, int64_t now_ms, uint32_t& retry_after_s);

  /// Forgets sources whose bucket is full again (call now and then).
  void sweep(int64_t now_ms);

  size_t tracked() const { return buckets_.size(); }
  uint64_t refused_total() const { return refused_; }
  uint64_t dropped_total() const { return dropped_; }

private:
  struct hasher {
    size_t operator()(const address& a) const noexcept;
  };
  struct entry {
    common::token_bucket bucket;
    int64_t told_at = -1000000;  ///< when this source last got a 4.29
  };
  budget_config cfg_;
  std::unordered_map<address, entry, hasher> buckets_;
  entry shared_;  ///< for sources beyond cfg_.sources
  uint64_t refused_ = 0, dropped_ = 0;
};

}  // namespace coapfleet::transport
