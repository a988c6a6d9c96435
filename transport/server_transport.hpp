// The CoAP transport of the main server: owns the libcoap context on one
// thread (the only code that calls coap_*), converts datagrams to typed
// messages and typed answers back to CoAP responses, and sends the server's
// own requests (update notifications to agents).
#pragma once

#include <memory>
#include <string>

#include "actors/interfaces.hpp"

namespace coapfleet::transport {

struct server_transport_config {
  std::string bind = "0.0.0.0";
  uint16_t port = 5683;
  size_t max_payload = 64 * 1024;      ///< larger request bodies get 4.13
  unsigned session_timeout_s = 120;    ///< idle client sessions are dropped after this
  unsigned max_idle_sessions = 20000;  ///< and never more than this many kept
  unsigned read_wait_ms = 5000;        ///< reads not answered by then get 5.03
};

enum class stop_reason { signal, shutdown, restart };

class server_transport {
public:
  server_transport(caf::actor_system& sys, server_transport_config cfg);
  ~server_transport();

  /// Creates the libcoap context, binds the endpoint and registers resources.
  bool open(std::string& error);
  /// The typed handle other actors send to (routes, notifications, replies).
  transport_actor handle() const;
  void set_gateway(gateway_actor gateway);
  /// Runs the I/O loop on the calling thread until SIGINT/SIGTERM or a
  /// restart/shutdown answer has left. Pending CON messages get a moment
  /// to be delivered before it returns.
  stop_reason run();
  /// "udp 0.0.0.0:5683"
  std::string endpoint_description() const;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

}  // namespace coapfleet::transport
