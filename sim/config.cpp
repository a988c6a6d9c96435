#include "sim/config.hpp"

#include <cmath>
#include <cstdio>

namespace coapfleet::sim {

bool parse_ipv4(const std::string& text, uint32_t& ip) {
  uint32_t v = 0;
  int parts = 0;
  size_t pos = 0;
  while (parts < 4) {
    if (pos >= text.size() || text[pos] < '0' || text[pos] > '9')
      return false;
    uint32_t octet = 0;
    size_t digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9' && digits < 4) {
      octet = octet * 10 + static_cast<uint32_t>(text[pos] - '0');
      ++pos;
      ++digits;
    }
    if (octet > 255 || digits > 3)
      return false;
    v = v << 8 | octet;
    ++parts;
    if (parts < 4) {
      if (pos >= text.size() || text[pos] != '.')
        return false;
      ++pos;
    }
  }
  if (pos != text.size())
    return false;
  ip = v;
  return true;
}

std::string format_ipv4(uint32_t ip) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", ip >> 24, ip >> 16 & 255, ip >> 8 & 255,
                ip & 255);
  return buf;
}

bool parse_server_uri(const std::string& uri, uint32_t& ip, uint16_t& port, std::string& err) {
  const std::string scheme = "coap://";
  if (uri.compare(0, 8, "coaps://") == 0) {
    err = "--server " + uri + ": coaps (DTLS) is not supported by the simulator; use coap://";
    return false;
  }
  if (uri.compare(0, scheme.size(), scheme) != 0) {
    err = "--server " + uri + ": expected coap://HOST[:PORT] (e.g. coap://127.0.0.1:5683)";
    return false;
  }
  std::string rest = uri.substr(scheme.size());
  while (!rest.empty() && rest.back() == '/')
    rest.pop_back();
  if (rest.find('/') != std::string::npos || rest.find('?') != std::string::npos) {
    err = "--server " + uri + ": give the server's address only, without a path";
    return false;
  }
  if (!rest.empty() && rest[0] == '[') {
    err = "--server " + uri + ": IPv6 is not supported; simulated nodes live on 127.0.0.0/8";
    return false;
  }
  std::string host = rest;
  uint32_t p = 5683;
  auto colon = rest.rfind(':');
  if (colon != std::string::npos) {
    host = rest.substr(0, colon);
    auto ps = rest.substr(colon + 1);
    if (ps.empty() || ps.size() > 5 || ps.find_first_not_of("0123456789") != std::string::npos) {
      err = "--server " + uri + ": bad port '" + ps + "'";
      return false;
    }
    p = static_cast<uint32_t>(std::stoul(ps));
    if (p == 0 || p > 65535) {
      err = "--server " + uri + ": port must be 1..65535";
      return false;
    }
  }
  if (host == "localhost")
    host = "127.0.0.1";
  uint32_t a = 0;
  if (!parse_ipv4(host, a)) {
    err = "--server " + uri + ": HOST must be an IPv4 address in 127.0.0.0/8 (or localhost)";
    return false;
  }
  if (!is_loopback(a)) {
    err = "--server " + uri + ": refusing a non-loopback address (" + host
          + "); coapfleet-sim generates load for loopback and network-namespace testing only";
    return false;
  }
  ip = a;
  port = static_cast<uint16_t>(p);
  return true;
}

uint32_t node_address(uint32_t base, uint32_t index) {
  return base + (index / 250) * 256 + index % 250 + 1;
}

std::string node_id(const std::string& prefix, uint32_t index) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%05u", index + 1);
  return prefix + buf;
}

std::string validate(const config& c) {
  if (c.nodes == 0)
    return "--nodes must be at least 1";
  if (c.nodes > 1000000)
    return "--nodes above 1000000 is not supported";
  if (c.nodes_per_socket == 0 || c.nodes_per_socket > 1000)
    return "--nodes-per-socket must be 1..1000";
  if (!is_loopback(c.server_ip))
    return "the server address must be in 127.0.0.0/8";
  if (!is_loopback(c.base_ip))
    return "--base " + format_ipv4(c.base_ip) + " is not in 127.0.0.0/8";
  uint64_t last = static_cast<uint64_t>(c.base_ip) + (c.sockets() - 1) / 250 * 256 + 250;
  if (last >> 24 != 127)
    return std::to_string(c.sockets()) + " node sockets from --base " + format_ipv4(c.base_ip)
           + " would leave 127.0.0.0/8; use a lower base or fewer nodes";
  uint32_t first = node_address(c.base_ip, 0);
  if (c.server_ip >= first && c.server_ip <= last && c.server_port == c.node_port) {
    uint32_t off = c.server_ip - c.base_ip;
    uint32_t oct = off & 255;
    if (oct >= 1 && oct <= 250)
      return "the server " + format_ipv4(c.server_ip) + ":" + std::to_string(c.server_port)
             + " is one of the simulated nodes' addresses; use another --base or --node-port";
  }
  auto bad = [](double x) { return !std::isfinite(x) || x < 0; };
  if (bad(c.duration) || bad(c.interval) || bad(c.install_seconds) || bad(c.rate)
      || bad(c.drain) || bad(c.report_every) || bad(c.ack_timeout) || bad(c.separate_timeout))
    return "times and rates must be finite and not negative";
  if (c.mode == sim_mode::fleet && c.interval < 0.01)
    return "--interval must be at least 0.01 s";
  if (c.ack_timeout < 0.05)
    return "--ack-timeout must be at least 0.05 s";
  if (c.ack_random_factor < 1.0 || c.ack_random_factor > 4.0)
    return "--ack-random-factor must be in 1..4";
  if (c.max_retransmit > 10)
    return "--max-retransmit must be at most 10";
  if (c.fail_rate < 0 || c.fail_rate > 1 || c.unhealthy_rate < 0 || c.unhealthy_rate > 1
      || c.timeout_rate < 0 || c.timeout_rate > 1 || c.fail_rate + c.timeout_rate > 1
      || c.fail_first < 0 || c.fail_first > 1)
    return "--fail-rate, --timeout-rate and --unhealthy-rate must be in 0..1 (fail and "
           "timeout rates at most 1 together)";
  if (c.late_nodes > c.nodes)
    return "--late must not exceed --nodes";
  if (c.late_nodes > 0 && !(c.late_after > 0))
    return "--late needs --late-after SECONDS > 0";
  if (c.mode == sim_mode::load && c.duration <= 0)
    return "load needs --duration > 0";
  if (c.inflight == 0 || c.inflight > 64)
    return "--inflight must be in 1..64";
  if (c.register_window == 0)
    return "--register-window must be at least 1";
  if (c.path.empty() || c.path.size() > 200)
    return "--path must be 1..200 characters";
  for (auto& s : c.services)
    if (s.empty() || s.size() > 64 || s.find_first_of("\"\\") != std::string::npos)
      return "--services: names of 1..64 characters without quotes or backslashes";
  if (c.services.size() > 32)
    return "--services: at most 32";
  if (c.id_prefix.size() > 40)
    return "--id-prefix: at most 40 characters";
  for (char ch : c.id_prefix)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
          || ch == '.' || ch == '_' || ch == '-'))
      return "--id-prefix: only [A-Za-z0-9._-]";
  return {};
}

double initial_timeout(const config& c, double r) {
  return c.ack_timeout * (1.0 + r * (c.ack_random_factor - 1.0));
}

double give_up_after(const config& c, double initial) {
  return initial * (std::ldexp(1.0, static_cast<int>(c.max_retransmit) + 1) - 1.0);
}

}  // namespace coapfleet::sim
