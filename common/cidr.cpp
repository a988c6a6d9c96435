#include "common/cidr.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace coapfleet::common {

bool parse_address(const std::string& s, std::array<uint8_t, 16>& out) {
  in_addr v4{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    out.fill(0);
    out[10] = 0xff;
    out[11] = 0xff;
    std::memcpy(out.data() + 12, &v4, 4);
    return true;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    std::memcpy(out.data(), &v6, 16);
    return true;
  }
  return false;
}

bool cidr::contains(const std::array<uint8_t, 16>& addr) const {
  unsigned full = bits / 8;
  if (std::memcmp(addr.data(), net.data(), full) != 0)
    return false;
  unsigned rest = bits % 8;
  if (rest == 0)
    return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (addr[full] & mask) == (net[full] & mask);
}

bool parse_cidr(const std::string& s, cidr& out, std::string& error) {
  auto slash = s.find('/');
  std::string host = s.substr(0, slash);
  bool v4 = host.find(':') == std::string::npos;
  if (!parse_address(host, out.net)) {
    error = "\"" + s + "\" is not an address or network (a.b.c.d/n or x::y/n)";
    return false;
  }
  unsigned max = v4 ? 32 : 128;
  unsigned bits = max;
  if (slash != std::string::npos) {
    auto len = s.substr(slash + 1);
    if (len.empty() || len.size() > 3 || len.find_first_not_of("0123456789") != std::string::npos
        || std::stoul(len) > max) {
      error = "\"" + s + "\": the prefix length must be 0.." + std::to_string(max);
      return false;
    }
    bits = static_cast<unsigned>(std::stoul(len));
  }
  out.bits = v4 ? bits + 96 : bits;
  out.text = s;
  // Host bits are ignored: 127.0.0.1/8 is 127.0.0.0/8.
  for (unsigned i = out.bits; i < 128; ++i)
    out.net[i / 8] &= static_cast<uint8_t>(~(0x80 >> (i % 8)));
  return true;
}

bool parse_cidr_list(const std::string& s, std::vector<cidr>& out, std::string& error) {
  out.clear();
  size_t start = 0;
  while (start <= s.size()) {
    auto comma = s.find(',', start);
    auto item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) {
      cidr c;
      if (!parse_cidr(item, c, error))
        return false;
      out.push_back(std::move(c));
    }
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  return true;
}

bool in_any(const std::vector<cidr>& nets, const std::string& addr) {
  if (nets.empty())
    return false;
  std::array<uint8_t, 16> a{};
  if (!parse_address(addr, a))
    return false;
  for (auto& n : nets)
    if (n.contains(a))
      return true;
  return false;
}

}  // namespace coapfleet::common
