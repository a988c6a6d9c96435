#include "common/sha256.hpp"

#include <cerrno>
#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

namespace coapfleet::common {

struct sha256::state {
  EVP_MD_CTX* ctx = nullptr;
  bool ok = false;
};

sha256::sha256() : st_(std::make_unique<state>()) {
  st_->ctx = EVP_MD_CTX_new();
  st_->ok = st_->ctx && EVP_DigestInit_ex(st_->ctx, EVP_sha256(), nullptr) == 1;
}

sha256::~sha256() {
  if (st_->ctx)
    EVP_MD_CTX_free(st_->ctx);
}

void sha256::update(const void* data, size_t n) {
  if (st_->ok && n > 0)
    st_->ok = EVP_DigestUpdate(st_->ctx, data, n) == 1;
}

std::string sha256::hex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!st_->ok || EVP_DigestFinal_ex(st_->ctx, md, &len) != 1)
    return {};
  st_->ok = false;
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(digits[md[i] >> 4]);
    out.push_back(digits[md[i] & 0xF]);
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  sha256 h;
  h.update(data);
  return h.hex();
}

std::string sha256_of_file(const std::string& path, int& err) {
  err = 0;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    err = errno;
    return {};
  }
  sha256 h;
  std::string buf(64 * 1024, '\0');
  for (;;) {
    auto n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      err = errno;
      ::close(fd);
      return {};
    }
    if (n == 0)
      break;
    h.update(buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  return h.hex();
}

}  // namespace coapfleet::common
