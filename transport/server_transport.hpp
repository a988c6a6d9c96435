// The CoAP transport of the main server: converts datagrams to typed
// messages and typed answers back to CoAP responses, and sends the server's
// own requests (update notifications to agents). Runs on one thread; see
// runtime.hpp for the loop and the bridge to the actors.
#pragma once

#include <memory>
#include <string>

#include "actors/interfaces.hpp"
#include "common/cidr.hpp"
#include "transport/stop_reason.hpp"
#include "transport/budget.hpp"
#include "transport/shedding.hpp"

namespace coapfleet::transport {

struct server_transport_config {
  std::string bind = "0.0.0.0";
  uint16_t port = 5683;
  size_t max_payload = 64 * 1024;        ///< larger request bodies get 4.13
  size_t max_artifact = 64 * 1024 * 1024;  ///< PUT /artifacts/<name> limit
  /// libcoap keeps a session per peer and walks all of them on every I/O
  /// turn: a large fleet of mostly idle nodes must not keep one each.
  unsigned session_timeout_s = 30;       ///< idle peer sessions are dropped after this
  unsigned max_idle_sessions = 256;      ///< and never more than this many kept
  /// An observed resource is re-rendered at most this often (the latest
  /// state always arrives; changes during a rendering are coalesced into
  /// one more); /nodes, the largest, at most once a second.
  unsigned observe_interval_ms = 0;
  /// /health and /updates follow telemetry (health reports, liveness) at
  /// most this often; control changes (registrations, job steps) at once.
  unsigned publish_interval_ms = 100;
  /// Control changes hold the acknowledgements after them until the changed
  /// representation is fresh only while it renders within this time.
  unsigned hold_render_ms = 20;
  /// When the server started (uptime in GET /health and GET /system).
  model::millis started_at = 0;
  /// When PUT /health is refused with 5.03 (see shedding.hpp).
  shedding_config shedding;

  // -- security (DESIGN §9; server_security.cpp) --------------------------------
  /// coaps:// (DTLS) on this port beside coap://; 0: no DTLS.
  uint16_t dtls_port = 5684;
  /// X.509 (PEM files): the server's certificate and key, and the CA whose
  /// client certificates identify nodes (CN or SAN = node id). Empty: PSK only.
  std::string cert_file, key_file, ca_file;
  /// Plain CoAP from these networks may do everything (the seeds' examples).
  std::vector<common::cidr> plain_trusted;
  /// What plain CoAP from anywhere else may do: trusted (full), reader or
  /// anonymous (nothing).
  model::role plain_role = model::role::reader;
  /// DTLS sessions kept while idle, so that nodes reporting every few
  /// seconds do not handshake on every report.
  unsigned dtls_idle_sessions = 16384;
  /// DTLS handshakes in progress at once (libcoap's default is 100).
  unsigned dtls_handshakes = 2048;
  /// Plain requests without an identity from outside plain_trusted: a token
  /// bucket per source address (4.29 beyond it); trusted sources too when
  /// budget_trusted.
  budget_config budget;
  bool budget_trusted = false;
  /// The block size of 2.xx bodies to such sources when they asked for
  /// none (16..1024); 0: the largest the path allows.
  unsigned untrusted_block = 64;
  /// GET /audit is served at once from the newest this many records
  /// (at most model::audit_max_limit; less when the store keeps fewer).
  size_t audit_tail = 1000;
  /// The records the store keeps (--audit-keep): a tail that large is all of them.
  uint64_t audit_keep = model::audit_default_keep;
};

class server_transport {
public:
  server_transport(caf::actor_system& sys, server_transport_config cfg);
  ~server_transport();

  /// Creates the libcoap context, binds the endpoint and registers resources.
  bool open(std::string& error);
  /// The typed handle other actors send to (routes, notifications, replies).
  transport_actor handle() const;
  void set_gateway(gateway_actor gateway);
  /// GET /nodes is read from the database by `reader` (before set_gateway).
  void set_reader(reader_actor reader);
  /// PUT /health of a node without a route (its actor is not active) goes
  /// to `registry` (before set_gateway).
  void set_registry(registry_actor registry);
  /// Runs the I/O loop on the calling thread until SIGINT/SIGTERM or a
  /// restart/shutdown answer has left.
  stop_reason run();
  /// "coap://0.0.0.0:5683 (udp), receive buffer 8192 KiB"
  std::string endpoint_description() const;
  /// "coaps://0.0.0.0:5684 (DTLS: PSK, X.509)", or "" without DTLS.
  std::string secure_endpoint_description() const;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

}  // namespace coapfleet::transport
