// A load generator for coaps:// (DTLS with pre-shared keys): many nodes, each
// its own DTLS session with its own key, register and then report health
// with one request in flight each. For the benchmark's DTLS rows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/key_file.hpp"

namespace coapfleet::transport {

struct dtls_load_config {
  std::string host = "127.0.0.1";
  uint16_t port = 5684;
  std::vector<common::psk_credentials> nodes;  ///< one session per node
  double duration_s = 10;                      ///< of the reporting phase
  double handshake_timeout_s = 60;
};

struct dtls_load_result {
  size_t sessions = 0;           ///< nodes that registered over their own session
  double handshake_s = 0;        ///< time until every session had registered
  double handshakes_per_s = 0;   ///< sessions / handshake_s
  uint64_t answers = 0;          ///< PUT /health answers in the reporting phase
  uint64_t stored = 0;           ///< of those, 2.04
  double stored_per_s = 0;
  double p50_ms = 0, p99_ms = 0;  ///< PUT /health latency
  uint64_t failed = 0;           ///< requests without an answer (timeouts, session errors)
  std::string error;             ///< set when the run could not start
};

dtls_load_result run_dtls_load(const dtls_load_config& cfg);

}  // namespace coapfleet::transport
