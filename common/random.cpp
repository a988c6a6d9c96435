#include "common/random.hpp"

#include <sys/random.h>

#include <cerrno>
#include <vector>

namespace coapfleet::common {

bool random_bytes(void* out, size_t n) {
  auto* p = static_cast<unsigned char*>(out);
  while (n > 0) {
    ssize_t got = ::getrandom(p, n, 0);
    if (got < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    p += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

std::string random_hex(size_t bytes) {
  static const char digits[] = "0123456789abcdef";
  std::vector<unsigned char> raw(bytes);
  if (!random_bytes(raw.data(), raw.size()))
    return {};
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char b : raw) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0x0f]);
  }
  // The raw bytes were a secret too.
  for (auto& b : raw)
    *static_cast<volatile unsigned char*>(&b) = 0;
  return out;
}

}  // namespace coapfleet::common
