// SHA-256 (OpenSSL's EVP interface), in lower-case hex: what identifies an
// artifact's version on the server, in a job, and on the agent.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace coapfleet::common {

/// Incremental SHA-256.
class sha256 {
public:
  sha256();
  ~sha256();
  sha256(const sha256&) = delete;
  sha256& operator=(const sha256&) = delete;
  void update(const void* data, size_t n);
  void update(std::string_view data) { update(data.data(), data.size()); }
  /// Lower-case hex digest; "" if OpenSSL failed. Ends the computation.
  std::string hex();

private:
  struct state;
  std::unique_ptr<state> st_;
};

/// The SHA-256 of `data` in lower-case hex.
std::string sha256_hex(std::string_view data);

/// The SHA-256 of a file's contents; "" and `err` (errno) when it cannot be read.
std::string sha256_of_file(const std::string& path, int& err);

}  // namespace coapfleet::common
