// X.509 on the client side (the agent, the CLI) and for the server's own
// notifications: a certificate, its private key and the CA a peer's
// certificate must chain to, as PEM files; and the name checks libcoap 4.3.1
// leaves to its application (it verifies a chain, never a name).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace coapfleet::common {

struct certificate_files {
  std::string cert;  ///< PEM certificate shown to the peer
  std::string key;   ///< its PEM private key (a file only its owner may read)
  std::string ca;    ///< PEM CA certificate(s) the peer's certificate must chain to
  bool empty() const { return cert.empty() && key.empty() && ca.empty(); }
};

/// Checks the files before any handshake, so that a mistake is a clear
/// message at start and not a handshake that fails later: all three given,
/// each a readable PEM of its kind, the key readable by its owner only (as
/// key files are) and belonging to the certificate. `error` says what is wrong
/// (never any key material).
bool check_certificate_files(const certificate_files& f, std::string& error);

/// Whether a certificate (DER) is issued to `name`, as a client checks its
/// server: an IP literal must be one of the certificate's IP
/// subjectAltNames; a host name must match one of its DNS subjectAltNames,
/// or its CN when it has none (OpenSSL's X509_check_host, no partial
/// wildcards).
bool certificate_has_name(const uint8_t* der, size_t length, const std::string& name);

/// Whether `name` can be an expected peer name (--server-name): 1..253
/// printable characters without spaces.
bool valid_peer_name(const std::string& name);

}  // namespace coapfleet::common
