// Internals shared by the simulator engine's source files (engine.cpp: setup,
// loop and datagrams; engine_exchange.cpp: confirmable exchanges;
// engine_fleet.cpp: registration, health and jobs; engine_load.cpp: load
// mode and the modes' drivers). Not part of the engine's interface.
#pragma once

#include <arpa/inet.h>
#include <cstddef>
#include <cstdint>
#include <netinet/in.h>

namespace coapfleet::sim::internal {

inline constexpr int64_t second = 1000000000;
inline constexpr int64_t exchange_lifetime = 247 * second;  // RFC 7252 EXCHANGE_LIFETIME
inline constexpr uint32_t stop_tag = UINT32_MAX - 1;
inline constexpr uint32_t signal_tag = UINT32_MAX - 2;
inline constexpr int max_events = 1024;
inline constexpr size_t max_body = 1024;  // everything fits one datagram: no Block1

inline int64_t to_ns(double seconds) { return static_cast<int64_t>(seconds * 1e9); }

inline sockaddr_in make_addr(uint32_t ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(ip);
  a.sin_port = htons(port);
  return a;
}

inline void put_be32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

inline uint32_t get_be32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16
         | static_cast<uint32_t>(p[2]) << 8 | p[3];
}

inline bool code_ok(uint8_t code) { return code >> 5 == 2; }

}  // namespace coapfleet::sim::internal
