#include "sim/stats.hpp"

#include <algorithm>

#include "sim/coap_codec.hpp"

namespace coapfleet::sim {

size_t latency_histogram::bucket_of(uint64_t v) {
  if (v < linear)
    return static_cast<size_t>(v);
  // v >= 128: highest bit h >= 7; group g = h - 7; sub-bucket = next 6 bits.
  unsigned h = 63u - static_cast<unsigned>(__builtin_clzll(v));
  unsigned g = h - (sub_bits + 1);
  if (g >= groups)
    return linear + groups * sub - 1;
  unsigned s = static_cast<unsigned>(v >> (h - sub_bits)) & (sub - 1);
  return linear + g * sub + s;
}

uint64_t latency_histogram::bucket_upper(size_t b) {
  if (b < linear)
    return b;
  size_t g = (b - linear) / sub, s = (b - linear) % sub;
  unsigned h = static_cast<unsigned>(g) + sub_bits + 1;
  uint64_t lo = (uint64_t{1} << h) | (static_cast<uint64_t>(s) << (h - sub_bits));
  return lo + (uint64_t{1} << (h - sub_bits)) - 1;
}

void latency_histogram::record(uint64_t micros) {
  ++buckets_[bucket_of(micros)];
  ++count_;
  sum_ += micros;
  max_ = std::max(max_, micros);
  min_ = std::min(min_, micros);
}

uint64_t latency_histogram::quantile(double q) const {
  if (!count_)
    return 0;
  q = std::min(1.0, std::max(0.0, q));
  auto rank = static_cast<uint64_t>(q * static_cast<double>(count_) + 0.5);
  rank = std::max<uint64_t>(1, std::min(rank, count_));
  uint64_t seen = 0;
  for (size_t b = 0; b < buckets_.size(); ++b) {
    seen += buckets_[b];
    if (seen >= rank)
      return std::min(bucket_upper(b), max_);
  }
  return max_;
}

void latency_histogram::merge(const latency_histogram& o) {
  for (size_t b = 0; b < buckets_.size(); ++b)
    buckets_[b] += o.buckets_[b];
  count_ += o.count_;
  sum_ += o.sum_;
  max_ = std::max(max_, o.max_);
  min_ = std::min(min_, o.min_);
}

uint64_t code_counts::total() const {
  uint64_t t = 0;
  for (auto c : by_code)
    t += c;
  return t;
}

std::string code_counts::text() const {
  std::string out;
  for (unsigned c = 0; c < 256; ++c) {
    if (!by_code[c])
      continue;
    if (!out.empty())
      out += ' ';
    out += coap::code_text(static_cast<uint8_t>(c)) + ":" + std::to_string(by_code[c]);
  }
  return out.empty() ? "-" : out;
}

std::string code_counts::json() const {
  std::string out = "{";
  for (unsigned c = 0; c < 256; ++c) {
    if (!by_code[c])
      continue;
    if (out.size() > 1)
      out += ',';
    out += "\"" + coap::code_text(static_cast<uint8_t>(c)) + "\":" + std::to_string(by_code[c]);
  }
  return out + "}";
}

}  // namespace coapfleet::sim
