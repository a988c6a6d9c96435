// Networks for the plain-CoAP policy (--plain-trusted).
#include <doctest/doctest.h>

#include "common/cidr.hpp"

using namespace coapfleet::common;

TEST_CASE("cidr: IPv4 and IPv6 networks, single hosts, and what is refused") {
  std::vector<cidr> nets;
  std::string err;
  REQUIRE(parse_cidr_list("127.0.0.0/8,::1/128,10.1.2.3", nets, err));
  REQUIRE(nets.size() == 3);
  CHECK(in_any(nets, "127.0.0.1"));
  CHECK(in_any(nets, "127.200.3.4"));
  CHECK(in_any(nets, "::1"));
  CHECK(in_any(nets, "10.1.2.3"));
  CHECK_FALSE(in_any(nets, "10.1.2.4"));
  CHECK_FALSE(in_any(nets, "128.0.0.1"));
  CHECK_FALSE(in_any(nets, "::2"));
  CHECK_FALSE(in_any(nets, "not an address"));
  REQUIRE(parse_cidr_list("127.0.0.1/32", nets, err));
  CHECK(in_any(nets, "127.0.0.1"));
  CHECK_FALSE(in_any(nets, "127.0.0.2"));
  REQUIRE(parse_cidr_list("192.168.1.77/20", nets, err));  // host bits ignored
  CHECK(in_any(nets, "192.168.0.1"));
  CHECK(in_any(nets, "192.168.15.255"));
  CHECK_FALSE(in_any(nets, "192.168.16.0"));
  REQUIRE(parse_cidr_list("fd00::/8", nets, err));
  CHECK(in_any(nets, "fd12::5"));
  CHECK_FALSE(in_any(nets, "fe80::1"));
  REQUIRE(parse_cidr_list("", nets, err));
  CHECK(nets.empty());
  CHECK_FALSE(in_any(nets, "127.0.0.1"));
  REQUIRE(parse_cidr_list("0.0.0.0/0", nets, err));
  CHECK(in_any(nets, "8.8.8.8"));
  CHECK_FALSE(parse_cidr_list("127.0.0.0/33", nets, err));
  CHECK(err.find("0..32") != std::string::npos);
  CHECK_FALSE(parse_cidr_list("::/129", nets, err));
  CHECK_FALSE(parse_cidr_list("300.1.1.1", nets, err));
  CHECK_FALSE(parse_cidr_list("1.2.3.4/", nets, err));
  CHECK_FALSE(parse_cidr_list("1.2.3.4/x", nets, err));
}
