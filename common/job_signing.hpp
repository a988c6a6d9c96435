// Ed25519 keys for signed jobs (OpenSSL's libcrypto): the operator's
// private key signs a job's canonical text (model/job_signature.hpp) in the
// CLI (--sign-key), the agent verifies it with the public key (--verify-key).
// Keys are PEM files as `openssl genpkey -algorithm ed25519` and `openssl
// pkey -pubout` write them.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace coapfleet::common {

/// An Ed25519 key, private (signs and verifies) or public (verifies).
class ed25519_key {
public:
  ~ed25519_key();
  ed25519_key(const ed25519_key&) = delete;
  ed25519_key& operator=(const ed25519_key&) = delete;

  /// A PEM private key; the file must be readable by its owner only
  /// (owner_only_file). Null and `error` when it cannot be used.
  static std::shared_ptr<const ed25519_key> load_private(const std::string& path,
                                                         std::string& error);
  /// A PEM public key ("-----BEGIN PUBLIC KEY-----"). Null and `error` when
  /// it cannot be used.
  static std::shared_ptr<const ed25519_key> load_public(const std::string& path,
                                                        std::string& error);
  /// The same from PEM text (tests).
  static std::shared_ptr<const ed25519_key> from_pem(std::string_view pem, bool is_private,
                                                     std::string& error);

  /// The signature of `text` as 128 lower-case hex digits; "" when this is
  /// a public key or OpenSSL failed.
  std::string sign(std::string_view text) const;
  /// Whether `signature_hex` (128 hex digits) is this key's signature of `text`.
  bool verify(std::string_view text, std::string_view signature_hex) const;

private:
  struct impl;
  explicit ed25519_key(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace coapfleet::common
