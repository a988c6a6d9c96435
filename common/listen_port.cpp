#include "common/listen_port.hpp"

#include <atomic>
#include <cerrno>
#include <netinet/in.h>
#include <unistd.h>

namespace coapfleet::common {

namespace {

std::atomic<bool> shared{false};

uint16_t port_of(const sockaddr* addr) {
  if (addr->sa_family == AF_INET)
    return ntohs(reinterpret_cast<const sockaddr_in*>(addr)->sin_port);
  if (addr->sa_family == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(addr)->sin6_port);
  return 0;
}

}  // namespace

void share_listening_ports(bool allowed) {
  shared = allowed;
}

bool listening_ports_shared() {
  return shared;
}

bool udp_port_in_use(const sockaddr* addr, socklen_t length) {
  if (port_of(addr) == 0)
    return false;
  int fd = ::socket(addr->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  if (addr->sa_family == AF_INET6) {
    // As libcoap binds an IPv6 endpoint: IPv4 too (so "::" meets "0.0.0.0").
    int off = 0;
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  }
  bool in_use = ::bind(fd, addr, length) != 0 && errno == EADDRINUSE;
  ::close(fd);
  return in_use;
}

bool tcp_port_in_use(const sockaddr* addr, socklen_t length) {
  if (port_of(addr) == 0)
    return false;
  int fd = ::socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  bool in_use = ::bind(fd, addr, length) != 0 && errno == EADDRINUSE;
  ::close(fd);
  return in_use;
}

std::string listening_port_refusal(const sockaddr* addr, socklen_t length,
                                   const std::string& shown) {
  if (listening_ports_shared() || !udp_port_in_use(addr, length))
    return {};
  return "cannot listen on " + shown
         + ": the address and port are in use by another socket (another coapfleet-server "
           "or agent?); start with --reuse-port to share them";
}

}  // namespace coapfleet::common
