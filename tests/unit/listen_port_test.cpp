// Listening ports (common/listen_port): a port another socket has is found
// before libcoap's SO_REUSEADDR bind would share it; --reuse-port allows it.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include "common/listen_port.hpp"

using namespace coapfleet::common;

namespace {

sockaddr_in loopback(uint16_t port, const char* ip = "127.0.0.1") {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

const sockaddr* sa(const sockaddr_in& a) {
  return reinterpret_cast<const sockaddr*>(&a);
}

/// A UDP socket bound as libcoap binds (SO_REUSEADDR) to a free loopback port.
struct held_port {
  int fd = -1;
  uint16_t port = 0;
  held_port() {
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    auto a = loopback(0);
    REQUIRE(::bind(fd, sa(a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~held_port() { ::close(fd); }
};

}  // namespace

TEST_CASE("listen_port: a port held by another socket is in use, with SO_REUSEADDR too") {
  held_port held;
  auto same = loopback(held.port);
  CHECK(udp_port_in_use(sa(same), sizeof same));
  auto any = loopback(held.port, "0.0.0.0");
  CHECK(udp_port_in_use(sa(any), sizeof any));  // the wildcard overlaps it
  auto other = loopback(held.port, "127.0.0.2");
  CHECK_FALSE(udp_port_in_use(sa(other), sizeof other));  // another address, another socket
  auto zero = loopback(0);
  CHECK_FALSE(udp_port_in_use(sa(zero), sizeof zero));

  auto why = listening_port_refusal(sa(same), sizeof same,
                                    "127.0.0.1:" + std::to_string(held.port));
  CHECK(why.find("127.0.0.1:" + std::to_string(held.port)) != std::string::npos);
  CHECK(why.find("in use by another socket") != std::string::npos);
  CHECK(why.find("--reuse-port") != std::string::npos);
  share_listening_ports(true);
  CHECK(listening_port_refusal(sa(same), sizeof same, "x").empty());
  share_listening_ports(false);
  CHECK_FALSE(listening_port_refusal(sa(same), sizeof same, "x").empty());
}

TEST_CASE("listen_port: a free port is not in use, and the probe leaves it free") {
  uint16_t port;
  {
    held_port held;
    port = held.port;
  }
  auto a = loopback(port);
  CHECK_FALSE(udp_port_in_use(sa(a), sizeof a));
  CHECK_FALSE(udp_port_in_use(sa(a), sizeof a));
  CHECK(listening_port_refusal(sa(a), sizeof a, "x").empty());
}
