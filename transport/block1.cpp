#include "transport/block1.hpp"

#include <algorithm>
#include <utility>
#include <vector>

namespace coapfleet::transport {

bool decode_block_value(const uint8_t* value, size_t length, block_value& out) {
  if (length > 3)
    return false;
  uint32_t v = 0;
  for (size_t i = 0; i < length; ++i)
    v = v << 8 | value[i];
  out.num = v >> 4;
  out.more = (v & 8u) != 0;
  out.szx = static_cast<uint8_t>(v & 7u);
  return true;
}

void block1_assembler::drop(map::iterator i) {
  bytes_ -= i->second.body.capacity();
  auto s = per_source_.find(i->second.source);
  if (s != per_source_.end() && --s->second == 0)
    per_source_.erase(s);
  uploads_.erase(i);
}

block1_assembler::result block1_assembler::refuse(uint16_t code, std::string error,
                                                  const std::string* key) {
  if (key) {
    auto i = uploads_.find(*key);
    if (i != uploads_.end())
      drop(i);
  }
  result r;
  r.what = outcome::refused;
  r.code = code;
  r.error = std::move(error);
  return r;
}

block1_assembler::result block1_assembler::take(const block& b, size_t max_body, int64_t now_ms) {
  if (now_ms - last_sweep_ >= 1000)
    expire(now_ms);
  const auto& v = b.value;
  auto key = b.endpoint + '\0' + b.target;
  if (v.szx == 7)
    return refuse(400, "Block1 with the reserved block size (SZX 7)", &key);
  if (v.more && b.data.size() != v.size())
    return refuse(400, "block " + std::to_string(v.num) + " has More set and "
                         + std::to_string(b.data.size()) + " bytes: it must carry exactly "
                         + std::to_string(v.size()) + " (its SZX)", &key);
  if (!v.more && b.data.size() > v.size())
    return refuse(400, "block " + std::to_string(v.num) + " carries "
                         + std::to_string(b.data.size()) + " bytes, more than its SZX allows ("
                         + std::to_string(v.size()) + ")", &key);
  auto too_large = [&](uint64_t size) {
    auto r = refuse(413, "request body too large: " + std::to_string(size)
                           + " bytes, the limit is " + std::to_string(max_body), &key);
    r.size1 = max_body;
    return r;
  };
  if (b.size1 && *b.size1 > max_body)
    return too_large(*b.size1);
  if (v.offset() + b.data.size() > max_body)
    return too_large(v.offset() + b.data.size());

  auto i = uploads_.find(key);
  if (v.num == 0) {
    if (i != uploads_.end())
      drop(i);  // a new upload to the same target replaces the one in progress
    if (!v.more) {
      result r;
      r.what = outcome::complete;
      r.body.assign(b.data);
      return r;
    }
    auto busy = [](uint16_t code, std::string why) {
      result r;
      r.what = outcome::refused;
      r.code = code;
      r.error = std::move(why);
      r.max_age = 10;
      return r;
    };
    auto s = per_source_.find(b.source);
    if (s != per_source_.end() && s->second >= limits_.per_source)
      return busy(429, "too many block-wise uploads in progress from " + b.source + " (at most "
                         + std::to_string(limits_.per_source) + "): finish one first");
    if (uploads_.size() >= limits_.total || bytes_ + b.data.size() > limits_.total_bytes)
      return busy(503, "too many block-wise uploads in progress, retry after Max-Age seconds");
    upload u;
    u.source = b.source;
    u.body.reserve(b.data.size());
    if (bytes_ + u.body.capacity() > limits_.total_bytes)
      return busy(503, "too many block-wise uploads in progress, retry after Max-Age seconds");
    u.body.assign(b.data);
    u.last_block = b.data.size();
    u.last_used = now_ms;
    u.format = b.format;
    bytes_ += u.body.capacity();
    ++per_source_[b.source];
    uploads_.emplace(std::move(key), std::move(u));
    result r;
    r.what = outcome::more;
    return r;
  }

  if (i == uploads_.end())
    return refuse(408, "block " + std::to_string(v.num)
                         + " of no upload in progress (block 0 never came, or the upload "
                           "stalled and expired): start again from block 0", nullptr);
  auto& u = i->second;
  if (b.format != u.format)
    return refuse(408, "block " + std::to_string(v.num) + " has Content-Format "
                         + std::to_string(b.format < 0 ? 0 : b.format) + ", block 0 had "
                         + std::to_string(u.format < 0 ? 0 : u.format)
                         + ": start again from block 0", &key);
  const auto have = u.body.size();
  if (v.offset() + b.data.size() == have && b.data.size() == u.last_block
      && std::string_view(u.body).substr(have - u.last_block) == b.data && v.more) {
    u.last_used = now_ms;  // the last block again (a retry): nothing new
    result r;
    r.what = outcome::more;
    return r;
  }
  if (v.offset() != have)
    return refuse(408, "block " + std::to_string(v.num) + " starts at byte "
                         + std::to_string(v.offset()) + " but " + std::to_string(have)
                         + " bytes arrived so far (a gap or a block out of order): start "
                           "again from block 0", &key);
  // Memory is what the buffers hold (their capacity), and it never goes
  // beyond the cap: the growth is decided here, not by the string.
  auto before = u.body.capacity();
  size_t need = have + b.data.size();
  if (need > before) {
    size_t grown = std::min(std::max(need, before * 2), std::max(need, max_body));
    if (bytes_ - before + grown > limits_.total_bytes)
      grown = need;
    if (bytes_ - before + grown > limits_.total_bytes) {
      auto r = refuse(503, "too many bytes in block-wise uploads in progress, retry after "
                           "Max-Age seconds", &key);
      r.max_age = 10;
      return r;
    }
    u.body.reserve(grown);
    bytes_ += u.body.capacity() - before;
    before = u.body.capacity();
    if (bytes_ > limits_.total_bytes) {
      auto r = refuse(503, "too many bytes in block-wise uploads in progress, retry after "
                           "Max-Age seconds", &key);
      r.max_age = 10;
      return r;
    }
  }
  u.body.append(b.data);
  bytes_ += u.body.capacity() - before;
  u.last_block = b.data.size();
  u.last_used = now_ms;
  result r;
  if (v.more) {
    r.what = outcome::more;
    return r;
  }
  r.what = outcome::complete;
  bytes_ -= u.body.capacity();
  r.body = std::move(u.body);
  auto s = per_source_.find(u.source);
  if (s != per_source_.end() && --s->second == 0)
    per_source_.erase(s);
  uploads_.erase(i);
  return r;
}

std::optional<int> block1_assembler::format_of(const std::string& endpoint,
                                               const std::string& target) const {
  auto i = uploads_.find(endpoint + '\0' + target);
  if (i == uploads_.end())
    return std::nullopt;
  return i->second.format;
}

void block1_assembler::forget(const std::string& endpoint, const std::string& target) {
  auto i = uploads_.find(endpoint + '\0' + target);
  if (i != uploads_.end())
    drop(i);
}

void block1_assembler::expire(int64_t now_ms) {
  last_sweep_ = now_ms;
  std::vector<map::iterator> stale;
  for (auto i = uploads_.begin(); i != uploads_.end(); ++i)
    if (now_ms - i->second.last_used > limits_.idle_ms)
      stale.push_back(i);
  for (auto i : stale)
    drop(i);
}

}  // namespace coapfleet::transport
