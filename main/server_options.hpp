// The server's command line: every option of coapfleet-server (but the
// `keys` subcommand's, main/server_keys.hpp), its checks, and the values
// derived from them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include "model/audit.hpp"
#include "server_cluster.hpp"
#include "transport/server_transport.hpp"

namespace coapfleet::server {

struct server_options {
  transport::server_transport_config transport;
  std::string db = "coapfleet.db";
  std::string artifacts;  ///< default: "artifacts" beside the database
  std::string log_level = "info";
  double stale_after = 60;
  size_t max_nodes = 1'000'000;
  double jobs_per_minute = 60;
  double offline_after = 180;
  double idle_after = 40;
  size_t health_list = 100;
  unsigned health_flush_ms = 500;
  unsigned job_timeout = 3600;
  bool notify_offline = false;
  bool no_system_actions = false;
  bool reuse_port = false;
  size_t max_payload = 64 * 1024;
  std::string plain_trusted = "127.0.0.0/8,::1/128";
  std::string plain_access = "read";
  /// Audit records kept (the oldest go first).
  uint64_t audit_keep = model::audit_default_keep;
  unsigned history_days = 90;
  server::cluster_options cluster;
  /// Threads running the actors (the transport and the database have their
  /// own): the cores but one, at least 2, at most 4.
  unsigned workers = std::clamp(std::thread::hardware_concurrency(), 3u, 5u) - 1;
};

/// Adds every option to `app`, bound to `opt`.
void add_server_options(CLI::App& app, server_options& opt);

/// Once parsed: what is wrong with the options ("" when nothing is), and
/// the values derived from them (the plain role, the trusted networks, the
/// artifact directory's default).
std::string finish_server_options(server_options& opt);

}  // namespace coapfleet::server
