// The blocking client's Block1 upload (RFC 7959): block by block on the raw
// context, following the server's smaller block size, with progress.
#include "transport/blocking_exchange.hpp"

namespace coapfleet::client {

using detail::clock;
using detail::code_continue;

outcome blocking_client::upload(const std::string& path, const std::string& body,
                                size_t block_size, const upload_progress& progress) {
  auto& d = *impl_;
  outcome out;
  auto* s = d.session_for(true, out.failure);
  if (!s)
    return out;
  unsigned szx = 6;
  while (szx > 0 && (size_t{16} << szx) > block_size)
    --szx;
  size_t offset = 0;
  d.new_token(s);
  for (;;) {
    size_t size = size_t{16} << szx;
    uint32_t num = static_cast<uint32_t>(offset / size);
    std::string chunk = body.substr(offset, size);
    bool more = offset + chunk.size() < body.size();
    uint32_t block1 = num << 4 | (more ? 0x8u : 0u) | szx;
    std::optional<uint32_t> size1;
    if (num == 0)
      size1 = static_cast<uint32_t>(body.size());
    d.answers.clear();
    d.failure.clear();
    if (!d.send(s, COAP_REQUEST_CODE_PUT, path, "", &chunk, -1, -1, block1, size1,
                out.failure))
      return out;
    // Every block carries the same token: a late duplicate 2.31 of an
    // earlier block (its number) is not the answer to this one.
    std::optional<response> answer;
    auto deadline = clock::now() + d.timeout;
    while (!answer && d.wait(d.raw_ctx, deadline)) {
      auto r = d.take();
      if (r.code == code_continue && r.block1 && (*r.block1 >> 4) != num)
        continue;
      answer = std::move(r);
    }
    if (!answer) {
      out.failure = d.no_answer();
      d.token.clear();
      return out;
    }
    auto& r = *answer;
    if (r.code == code_continue && more) {
      offset += chunk.size();
      // The server may ask for smaller blocks (RFC 7959 2.3), never larger.
      if (r.block1 && (*r.block1 & 0x7u) < szx)
        szx = *r.block1 & 0x7u;
      if (progress)
        progress(offset, body.size());
      continue;
    }
    if (r.success() && progress)
      progress(body.size(), body.size());
    out.answer = std::move(r);
    d.token.clear();
    return out;
  }
}

}  // namespace coapfleet::client
