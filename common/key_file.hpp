// Pre-shared keys on the client side (the agent, the CLI): an identity and
// its key, the key read from a file only its owner can read.
#pragma once

#include <string>

namespace coapfleet::common {

struct psk_credentials {
  std::string identity;  ///< the node id or operator name the key belongs to
  std::string key;       ///< the key exactly as `keys add` printed it
  bool empty() const { return identity.empty() || key.empty(); }
};

/// Whether `path` is a regular file that neither its group nor others may
/// read or write (what a file holding a secret must be); `error` says why not.
bool owner_only_file(const std::string& path, std::string& error);

/// Reads a key file (the key on its first line; surrounding white space is
/// ignored). Refuses a file that its group or others may read or write, and
/// an empty one; `error` says why.
bool read_key_file(const std::string& path, std::string& key, std::string& error);

}  // namespace coapfleet::common
