// Listening ports that are this process's own. libcoap binds its endpoints
// with SO_REUSEADDR, and on Linux two UDP sockets that both set it may bind
// one address and port: a second server (or an agent given the server's
// port) would start without a word and take datagrams meant for the first.
// So every listening endpoint first checks that no other socket has its
// address and port, unless the operator says sharing is meant (--reuse-port).
#pragma once

#include <string>
#include <sys/socket.h>

namespace coapfleet::common {

/// --reuse-port: this process may listen where another socket already does.
/// Set by main() before any transport opens (off by default).
void share_listening_ports(bool allowed);
bool listening_ports_shared();

/// True when another socket has `addr`'s port on the same address, or on an
/// overlapping one (the wildcard address, or any address when `addr` is the
/// wildcard): a probe bind without SO_REUSEADDR fails with EADDRINUSE. Any
/// other failure (an address that is not local, ...) is left to the real
/// bind to report. Port 0 (any free port) is never in use.
bool udp_port_in_use(const sockaddr* addr, socklen_t length);

/// True when a socket listens on `addr`'s TCP port (on the same address or
/// an overlapping one): a probe bind with SO_REUSEADDR, as a listener binds,
/// fails with EADDRINUSE. Connections in TIME_WAIT do not count.
bool tcp_port_in_use(const sockaddr* addr, socklen_t length);

/// Why `shown` (address:port) cannot be listened on, or "" when it can:
/// udp_port_in_use unless listening_ports_shared().
std::string listening_port_refusal(const sockaddr* addr, socklen_t length,
                                   const std::string& shown);

}  // namespace coapfleet::common
