#include "common/job_signing.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/key_file.hpp"

namespace coapfleet::common {

struct ed25519_key::impl {
  EVP_PKEY* pkey = nullptr;
  bool is_private = false;
  ~impl() { EVP_PKEY_free(pkey); }
};

ed25519_key::ed25519_key(std::unique_ptr<impl> p) : impl_(std::move(p)) {
}

ed25519_key::~ed25519_key() = default;

namespace {

std::string openssl_error() {
  auto code = ERR_get_error();
  ERR_clear_error();
  if (code == 0)
    return "not a PEM key";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return buf;
}

bool read_text(const std::string& path, std::string& text, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read the key file " + path;
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  text = ss.str();
  return true;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

}  // namespace

std::shared_ptr<const ed25519_key> ed25519_key::from_pem(std::string_view pem, bool is_private,
                                                         std::string& error) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) {
    error = "out of memory";
    return nullptr;
  }
  EVP_PKEY* pkey = is_private ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr)
                              : PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (pkey == nullptr) {
    error = std::string(is_private ? "not a PEM private key" : "not a PEM public key") + " ("
            + openssl_error() + ")";
    return nullptr;
  }
  if (EVP_PKEY_id(pkey) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(pkey);
    error = "not an Ed25519 key (make one with: openssl genpkey -algorithm ed25519)";
    return nullptr;
  }
  auto p = std::make_unique<impl>();
  p->pkey = pkey;
  p->is_private = is_private;
  return std::shared_ptr<const ed25519_key>(new ed25519_key(std::move(p)));
}

std::shared_ptr<const ed25519_key> ed25519_key::load_private(const std::string& path,
                                                             std::string& error) {
  std::string text;
  if (!owner_only_file(path, error) || !read_text(path, text, error))
    return nullptr;
  auto key = from_pem(text, true, error);
  if (!key)
    error = path + ": " + error;
  return key;
}

std::shared_ptr<const ed25519_key> ed25519_key::load_public(const std::string& path,
                                                            std::string& error) {
  std::string text;
  if (!read_text(path, text, error))
    return nullptr;
  auto key = from_pem(text, false, error);
  if (!key)
    error = path + ": " + error + " (make it with: openssl pkey -in sign.pem -pubout)";
  return key;
}

std::string ed25519_key::sign(std::string_view text) const {
  if (!impl_->is_private)
    return {};
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr)
    return {};
  unsigned char sig[64];
  size_t len = sizeof sig;
  bool ok = EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, impl_->pkey) == 1
            && EVP_DigestSign(ctx, sig, &len, reinterpret_cast<const unsigned char*>(text.data()),
                              text.size())
                 == 1
            && len == sizeof sig;
  EVP_MD_CTX_free(ctx);
  if (!ok) {
    ERR_clear_error();
    return {};
  }
  static const char digits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * len);
  for (size_t i = 0; i < len; ++i) {
    hex += digits[sig[i] >> 4];
    hex += digits[sig[i] & 0xf];
  }
  return hex;
}

bool ed25519_key::verify(std::string_view text, std::string_view signature_hex) const {
  unsigned char sig[64];
  if (signature_hex.size() != 2 * sizeof sig)
    return false;
  for (size_t i = 0; i < sizeof sig; ++i) {
    int hi = hex_digit(signature_hex[2 * i]), lo = hex_digit(signature_hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return false;
    sig[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr)
    return false;
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, impl_->pkey) == 1
            && EVP_DigestVerify(ctx, sig, sizeof sig,
                                reinterpret_cast<const unsigned char*>(text.data()), text.size())
                 == 1;
  EVP_MD_CTX_free(ctx);
  ERR_clear_error();
  return ok;
}

}  // namespace coapfleet::common
