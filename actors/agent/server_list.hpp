// The servers an agent talks to: --server, repeated for the members of a
// cluster, the current one first. The reporter and the installer each keep
// one: a failover of one does not move the other, which may be in the
// middle of a conversation (a download, a fetch) that still gets answers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace coapfleet::agent {

class server_list {
public:
  using address = std::pair<std::string, uint16_t>;

  server_list() = default;
  /// `host`:`port` is current; `others` follow in turn.
  server_list(std::string host, uint16_t port, const std::vector<address>& others);

  const std::string& host() const { return all_[at_].first; }
  uint16_t port() const { return all_[at_].second; }
  /// "host:port" of the current server, as logs and calls name it.
  std::string current() const;
  /// How many servers there are besides the current one.
  size_t others() const { return all_.size() - 1; }

  /// A call to `asked` ("host:port") got no answer: when `asked` is still
  /// the current server, the next one in turn becomes current and the
  /// change is logged for `actor`. False when nothing moved (there is no
  /// other server, or another call failed over already).
  bool fail_over_from(const std::string& asked, const char* actor, const std::string& why);

private:
  std::vector<address> all_{{"127.0.0.1", 5683}};
  size_t at_ = 0;
};

}  // namespace coapfleet::agent
