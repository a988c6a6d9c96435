#include "actors/agent/server_list.hpp"

#include "common/log.hpp"

namespace coapfleet::agent {

server_list::server_list(std::string host, uint16_t port, const std::vector<address>& others) {
  all_.clear();
  all_.emplace_back(std::move(host), port);
  all_.insert(all_.end(), others.begin(), others.end());
}

std::string server_list::current() const {
  return host() + ":" + std::to_string(port());
}

bool server_list::fail_over_from(const std::string& asked, const char* actor,
                                 const std::string& why) {
  if (others() == 0 || asked != current())
    return false;
  at_ = (at_ + 1) % all_.size();
  CF_WARN(actor, "server ", asked, " ", why, "; failing over to ", current());
  return true;
}

}  // namespace coapfleet::agent
