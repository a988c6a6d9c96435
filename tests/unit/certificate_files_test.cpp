// X.509 files and names on the client side (common/certificate_files.hpp):
// what the agent and the CLI check before a handshake, and the server-name
// check they do in libcoap's certificate callback.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/certificate_files.hpp"

using namespace coapfleet::common;

namespace {

EVP_PKEY* new_key() {
  return EVP_EC_gen("P-256");
}

/// A self-signed certificate for `cn` with the subjectAltName `san` ("" none), DER.
std::string der_certificate(EVP_PKEY* key, const std::string& cn, const std::string& san,
                            X509** keep = nullptr) {
  X509* x = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, name);
  if (!san.empty()) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str());
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(x, key, EVP_sha256());
  unsigned char* buf = nullptr;
  int len = i2d_X509(x, &buf);
  std::string out(reinterpret_cast<char*>(buf), len > 0 ? static_cast<size_t>(len) : 0);
  OPENSSL_free(buf);
  if (keep)
    *keep = x;
  else
    X509_free(x);
  return out;
}

bool has_name(const std::string& der, const std::string& name) {
  return certificate_has_name(reinterpret_cast<const uint8_t*>(der.data()), der.size(), name);
}

struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/coapfleet-cert-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~temp_dir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

}  // namespace

TEST_CASE("certificate_has_name: IP SANs for addresses, DNS SANs (else the CN) for names") {
  EVP_PKEY* key = new_key();
  REQUIRE(key != nullptr);
  auto server = der_certificate(key, "coapfleet-server", "DNS:coapfleet-server,IP:127.0.0.1");
  CHECK(has_name(server, "coapfleet-server"));
  CHECK(has_name(server, "127.0.0.1"));
  CHECK_FALSE(has_name(server, "127.0.0.2"));
  CHECK_FALSE(has_name(server, "other-server"));
  CHECK_FALSE(has_name(server, "coapfleet-server.evil"));
  CHECK_FALSE(has_name(server, ""));
  auto cn_only = der_certificate(key, "fleet.example", "");
  CHECK(has_name(cn_only, "fleet.example"));
  CHECK_FALSE(has_name(cn_only, "127.0.0.1"));
  // With a DNS SAN the CN no longer counts.
  auto san_wins = der_certificate(key, "cn-name", "DNS:san-name");
  CHECK(has_name(san_wins, "san-name"));
  CHECK_FALSE(has_name(san_wins, "cn-name"));
  CHECK_FALSE(has_name("not a certificate", "coapfleet-server"));
  EVP_PKEY_free(key);
}

TEST_CASE("check_certificate_files: all three, PEM, owner-only key of the certificate") {
  temp_dir dir;
  EVP_PKEY* key = new_key();
  EVP_PKEY* other = new_key();
  X509* cert = nullptr;
  der_certificate(key, "node-1", "", &cert);
  auto write = [&](const std::string& name, auto&& fill, mode_t mode) {
    auto path = dir.path + "/" + name;
    std::FILE* f = std::fopen(path.c_str(), "w");
    fill(f);
    std::fclose(f);
    ::chmod(path.c_str(), mode);
    return path;
  };
  auto cert_path = write("node.pem", [&](std::FILE* f) { PEM_write_X509(f, cert); }, 0644);
  auto key_path = write("node.key", [&](std::FILE* f) {
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  }, 0600);
  auto other_key = write("other.key", [&](std::FILE* f) {
    PEM_write_PrivateKey(f, other, nullptr, nullptr, 0, nullptr, nullptr);
  }, 0600);
  auto loose_key = write("loose.key", [&](std::FILE* f) {
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  }, 0644);
  auto junk = write("junk.pem", [](std::FILE* f) { std::fputs("not pem\n", f); }, 0600);
  std::string err;
  CHECK(check_certificate_files({cert_path, key_path, cert_path}, err));
  CHECK_FALSE(check_certificate_files({cert_path, key_path, ""}, err));
  CHECK(err.find("--ca") != std::string::npos);
  CHECK_FALSE(check_certificate_files({cert_path, loose_key, cert_path}, err));
  CHECK(err.find("chmod 600") != std::string::npos);
  CHECK_FALSE(check_certificate_files({cert_path, other_key, cert_path}, err));
  CHECK(err.find("is not the private key of") != std::string::npos);
  CHECK_FALSE(check_certificate_files({junk, key_path, cert_path}, err));
  CHECK(err.find("no PEM certificate") != std::string::npos);
  CHECK_FALSE(check_certificate_files({cert_path, junk, cert_path}, err));
  CHECK(err.find("no (unencrypted) PEM private key") != std::string::npos);
  CHECK_FALSE(check_certificate_files({cert_path, key_path, dir.path + "/missing.pem"}, err));
  CHECK(err.find("missing.pem") != std::string::npos);
  CHECK(err.find("BEGIN") == std::string::npos);  // no key material in a message
  X509_free(cert);
  EVP_PKEY_free(key);
  EVP_PKEY_free(other);
}

TEST_CASE("valid_peer_name") {
  CHECK(valid_peer_name("coapfleet-server"));
  CHECK(valid_peer_name("127.0.0.1"));
  CHECK(valid_peer_name("::1"));
  CHECK_FALSE(valid_peer_name(""));
  CHECK_FALSE(valid_peer_name("two words"));
  CHECK_FALSE(valid_peer_name(std::string(254, 'a')));
  CHECK_FALSE(valid_peer_name(std::string("nul\0x", 5)));
}
