// Unit tests of the simulator's configuration helpers: --server parsing and
// the loopback-only rule, node addresses and ids, validation, RFC 7252 timing.
#include <doctest/doctest.h>

#include <string>

#include "sim/config.hpp"

using namespace coapfleet::sim;

TEST_CASE("--server: coap://HOST[:PORT] on loopback only") {
  uint32_t ip = 0;
  uint16_t port = 0;
  std::string err;
  CHECK(parse_server_uri("coap://127.0.0.1:5683", ip, port, err));
  CHECK(ip == 0x7F000001);
  CHECK(port == 5683);
  CHECK(parse_server_uri("coap://127.9.8.7", ip, port, err));
  CHECK(format_ipv4(ip) == "127.9.8.7");
  CHECK(port == 5683);
  CHECK(parse_server_uri("coap://localhost:40000/", ip, port, err));
  CHECK(ip == 0x7F000001);
  CHECK(port == 40000);

  err.clear();
  CHECK_FALSE(parse_server_uri("coap://10.0.0.1:5683", ip, port, err));
  CHECK(err.find("refusing a non-loopback address") != std::string::npos);
  CHECK_FALSE(parse_server_uri("coap://192.168.1.10", ip, port, err));
  CHECK(err.find("loopback") != std::string::npos);
  CHECK_FALSE(parse_server_uri("coap://example.com:5683", ip, port, err));
  CHECK(err.find("127.0.0.0/8") != std::string::npos);
  CHECK_FALSE(parse_server_uri("coaps://127.0.0.1", ip, port, err));
  CHECK(err.find("DTLS") != std::string::npos);
  CHECK_FALSE(parse_server_uri("http://127.0.0.1", ip, port, err));
  CHECK_FALSE(parse_server_uri("127.0.0.1:5683", ip, port, err));
  CHECK_FALSE(parse_server_uri("coap://[::1]:5683", ip, port, err));
  CHECK(err.find("IPv6") != std::string::npos);
  CHECK_FALSE(parse_server_uri("coap://127.0.0.1:0", ip, port, err));
  CHECK_FALSE(parse_server_uri("coap://127.0.0.1:65536", ip, port, err));
  CHECK_FALSE(parse_server_uri("coap://127.0.0.1:x", ip, port, err));
  CHECK_FALSE(parse_server_uri("coap://127.0.0.1:5683/health", ip, port, err));
  CHECK_FALSE(parse_server_uri("coap://127.0.0:5683", ip, port, err));
  CHECK_FALSE(parse_server_uri("coap://127.0.0.256", ip, port, err));
}

TEST_CASE("IPv4 literals") {
  uint32_t ip = 0;
  CHECK(parse_ipv4("127.2.0.0", ip));
  CHECK(ip == 0x7F020000);
  CHECK(parse_ipv4("0.0.0.0", ip));
  CHECK(parse_ipv4("255.255.255.255", ip));
  CHECK(ip == 0xFFFFFFFF);
  for (auto* bad : {"", "1.2.3", "1.2.3.4.5", "1..2.3", "1.2.3.4 ", "a.b.c.d", "1234.1.1.1",
                    "256.0.0.1", "1.2.3.-4"})
    CHECK_MESSAGE(!parse_ipv4(bad, ip), bad);
  CHECK(format_ipv4(0x7F020A01) == "127.2.10.1");
}

TEST_CASE("node i listens on base + (i/250)*256 + i%250 + 1") {
  uint32_t base = 0x7F020000;
  CHECK(format_ipv4(node_address(base, 0)) == "127.2.0.1");
  CHECK(format_ipv4(node_address(base, 249)) == "127.2.0.250");
  CHECK(format_ipv4(node_address(base, 250)) == "127.2.1.1");
  CHECK(format_ipv4(node_address(base, 9999)) == "127.2.39.250");
  CHECK(node_id("sim-", 0) == "sim-00001");
  CHECK(node_id("sim-", 9999) == "sim-10000");
  CHECK(node_id("n", 123455) == "n123456");
}

TEST_CASE("validate") {
  config c;
  CHECK(validate(c).empty());
  c.nodes = 0;
  CHECK_FALSE(validate(c).empty());
  c.nodes = 64000;
  CHECK(validate(c).empty());  // 127.2.0.1 .. 127.2.255.250
  c.base_ip = 0x7FFF0000;      // 127.255.0.1 .. 127.255.255.250
  CHECK(validate(c).empty());
  c.nodes = 64001;             // one more would be 128.0.0.1
  CHECK(validate(c).find("127.0.0.0/8") != std::string::npos);
  c.nodes_per_socket = 2;      // ... unless two nodes share each socket
  CHECK(validate(c).empty());
  c.nodes = 1000000;
  c.nodes_per_socket = 16;     // 62,500 sockets
  CHECK(c.sockets() == 62500);
  CHECK(validate(c).empty());
  c.nodes_per_socket = 0;
  CHECK(validate(c).find("--nodes-per-socket") != std::string::npos);
  c.nodes_per_socket = 1001;
  CHECK(validate(c).find("--nodes-per-socket") != std::string::npos);
  c.nodes_per_socket = 1;
  c.nodes = 10;
  c.base_ip = 0x0A000000;
  CHECK(validate(c).find("--base") != std::string::npos);
  c.base_ip = 0x7F000000;  // 127.0.0.1 .. 127.0.0.10 hits the server on 127.0.0.1:5683
  CHECK(validate(c).find("simulated nodes") != std::string::npos);
  c.node_port = 6000;
  CHECK(validate(c).empty());
  c = config{};
  c.mode = sim_mode::load;
  c.duration = 0;
  CHECK(validate(c).find("--duration") != std::string::npos);
  c.duration = 1;
  c.inflight = 0;
  CHECK_FALSE(validate(c).empty());
  c.inflight = 1;
  c.fail_rate = 1.5;
  CHECK_FALSE(validate(c).empty());
  c.fail_rate = 1;
  c.id_prefix = "bad prefix";
  CHECK_FALSE(validate(c).empty());
  c.id_prefix = "ok.prefix_1-";
  c.services = {"docker", "with\"quote"};
  CHECK_FALSE(validate(c).empty());
  c.services = {"docker"};
  CHECK(validate(c).empty());
}

TEST_CASE("RFC 7252 transmission timing") {
  config c;  // ACK_TIMEOUT 2 s, ACK_RANDOM_FACTOR 1.5, MAX_RETRANSMIT 4
  CHECK(initial_timeout(c, 0.0) == doctest::Approx(2.0));
  CHECK(initial_timeout(c, 0.5) == doctest::Approx(2.5));
  CHECK(initial_timeout(c, 0.999999) == doctest::Approx(3.0).epsilon(1e-5));
  // Sent at 0, 2, 6, 14, 30; given up at 62 (= MAX_TRANSMIT_WAIT 93 s for 3 s).
  CHECK(give_up_after(c, 2.0) == doctest::Approx(62.0));
  CHECK(give_up_after(c, 3.0) == doctest::Approx(93.0));
  c.max_retransmit = 0;
  CHECK(give_up_after(c, 2.0) == doctest::Approx(2.0));
}
