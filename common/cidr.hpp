// Address ranges (CIDR) for the plain-CoAP policy: which networks are trusted.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace coapfleet::common {

/// One IPv4 or IPv6 network. IPv4 addresses are kept in their IPv6-mapped
/// form (::ffff:a.b.c.d), so one comparison serves both families.
struct cidr {
  std::array<uint8_t, 16> net{};
  unsigned bits = 0;  ///< prefix length in the 128-bit form
  std::string text;   ///< as given

  bool contains(const std::array<uint8_t, 16>& addr) const;
};

/// "127.0.0.0/8", "10.1.2.3" (a /32), "::1/128", "fd00::/8"; false with
/// `error` set on anything else.
bool parse_cidr(const std::string& s, cidr& out, std::string& error);
/// A comma-separated list; an empty string is an empty list.
bool parse_cidr_list(const std::string& s, std::vector<cidr>& out, std::string& error);
/// A textual IPv4/IPv6 address in the 128-bit form; false if not an address.
bool parse_address(const std::string& s, std::array<uint8_t, 16>& out);
/// True if `addr` (textual) lies in one of `nets`.
bool in_any(const std::vector<cidr>& nets, const std::string& addr);

}  // namespace coapfleet::common
