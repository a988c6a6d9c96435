#include "transport/budget.hpp"

#include <cstring>

namespace coapfleet::transport {

size_t source_budgets::hasher::operator()(const address& a) const noexcept {
  uint64_t x, y;
  std::memcpy(&x, a.data(), 8);
  std::memcpy(&y, a.data() + 8, 8);
  // splitmix64 of both halves: spreads neighbouring addresses.
  uint64_t h = x ^ (y + 0x9E3779B97F4A7C15ull + (x << 6) + (x >> 2));
  h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
  h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
  return static_cast<size_t>(h ^ (h >> 31));
}

source_budgets::verdict source_budgets::admit(const address& from, int64_t now_ms,
                                              uint32_t& retry_after_s) {
  if (cfg_.rate <= 0)
    return verdict::pass;
  entry* e;
  auto i = buckets_.find(from);
  if (i != buckets_.end()) {
    e = &i->second;
  } else if (buckets_.size() < cfg_.sources) {
    e = &buckets_[from];
  } else {
    e = &shared_;
  }
  if (e->bucket.take(now_ms, cfg_.rate, cfg_.burst))
    return verdict::pass;
  // Telling a source once a second is enough; more answers to a flood
  // (perhaps from a spoofed address) would only feed it.
  if (now_ms - e->told_at < 1000) {
    ++dropped_;
    return verdict::drop;
  }
  e->told_at = now_ms;
  ++refused_;
  retry_after_s = e->bucket.retry_after_s(cfg_.rate);
  return verdict::refuse;
}

void source_budgets::sweep(int64_t now_ms) {
  for (auto i = buckets_.begin(); i != buckets_.end();)
    if (i->second.bucket.full(now_ms, cfg_.rate, cfg_.burst) && now_ms - i->second.told_at >= 1000)
      i = buckets_.erase(i);
    else
      ++i;
}

}  // namespace coapfleet::transport
