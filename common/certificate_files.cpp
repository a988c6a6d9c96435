#include "common/certificate_files.hpp"

#include <arpa/inet.h>

#include <cstdio>
#include <memory>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/key_file.hpp"

namespace coapfleet::common {

namespace {

struct file_closer {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using file_ptr = std::unique_ptr<std::FILE, file_closer>;
struct x509_free {
  void operator()(X509* x) const { X509_free(x); }
};
using x509_ptr = std::unique_ptr<X509, x509_free>;
struct pkey_free {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

file_ptr open_file(const std::string& what, const std::string& path, std::string& error) {
  file_ptr f(std::fopen(path.c_str(), "r"));
  if (!f)
    error = what + " " + path + " cannot be read";
  return f;
}

}  // namespace

bool check_certificate_files(const certificate_files& f, std::string& error) {
  if (f.cert.empty() || f.key.empty() || f.ca.empty()) {
    error = "X.509 needs all of --cert, --key and --ca (missing:";
    for (auto [flag, value] : {std::pair{" --cert", &f.cert}, {" --key", &f.key}, {" --ca", &f.ca}})
      if (value->empty())
        error += flag;
    error += ")";
    return false;
  }
  // A private key is a secret: the same rule as for key files.
  if (!owner_only_file(f.key, error))
    return false;
  bool ok = false;
  x509_ptr cert;
  do {
    auto cf = open_file("--cert", f.cert, error);
    if (!cf)
      break;
    cert.reset(PEM_read_X509(cf.get(), nullptr, nullptr, nullptr));
    if (!cert) {
      error = "--cert " + f.cert + " holds no PEM certificate";
      break;
    }
    auto kf = open_file("--key", f.key, error);
    if (!kf)
      break;
    std::unique_ptr<EVP_PKEY, pkey_free> key(
      PEM_read_PrivateKey(kf.get(), nullptr, nullptr, nullptr));
    if (!key) {
      error = "--key " + f.key + " holds no (unencrypted) PEM private key";
      break;
    }
    if (X509_check_private_key(cert.get(), key.get()) != 1) {
      error = "--key " + f.key + " is not the private key of --cert " + f.cert;
      break;
    }
    auto caf = open_file("--ca", f.ca, error);
    if (!caf)
      break;
    x509_ptr ca(PEM_read_X509(caf.get(), nullptr, nullptr, nullptr));
    if (!ca) {
      error = "--ca " + f.ca + " holds no PEM certificate";
      break;
    }
    ok = true;
  } while (false);
  // Nothing of this may be left for libcoap's next SSL_get_error to find.
  ERR_clear_error();
  return ok;
}

bool certificate_has_name(const uint8_t* der, size_t length, const std::string& name) {
  if (der == nullptr || length == 0 || name.empty())
    return false;
  const unsigned char* p = der;
  x509_ptr cert(d2i_X509(nullptr, &p, static_cast<long>(length)));
  bool match = false;
  if (cert) {
    unsigned char ip[16];
    if (::inet_pton(AF_INET, name.c_str(), ip) == 1 || ::inet_pton(AF_INET6, name.c_str(), ip) == 1)
      match = X509_check_ip_asc(cert.get(), name.c_str(), 0) == 1;
    else
      match = X509_check_host(cert.get(), name.data(), name.size(),
                              X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr)
              == 1;
  }
  ERR_clear_error();
  return match;
}

bool valid_peer_name(const std::string& name) {
  if (name.empty() || name.size() > 253)
    return false;
  for (unsigned char c : name)
    if (c <= 0x20 || c >= 0x7f)
      return false;
  return true;
}

}  // namespace coapfleet::common
